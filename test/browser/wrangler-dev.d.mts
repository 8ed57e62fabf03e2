// Types of wrangler-dev.mjs (the browser test's Node-only helpers).

export declare const root: string;

/** NAME=value pairs of .dev.vars.example: the secrets `wrangler dev` runs with in the browser test. */
export declare function devVars(): Record<string, string>;

/** test-artifacts/<name> (git-ignored); the directory is created when missing. */
export declare function artifactPath(name: string): string;

export declare function makeTempDir(prefix: string): string;
export declare function removeDir(dir: string): void;

export interface WranglerDev {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The wrangler node process (not a wrapper). */
  pid: number;
  /** Everything wrangler printed so far, for a failure message. */
  output(): string;
  /** Stops wrangler (and so workerd) and removes the temporary persistence directory. */
  stop(): Promise<void>;
}

export interface WranglerDevOptions {
  /** Extra `wrangler dev` arguments, e.g. `["--log-level", "warn"]`. */
  args?: string[];
  /** Extra environment variables for wrangler. */
  env?: Record<string, string>;
  /** Where the temporary persistence directory is created (default the OS's temporary directory). */
  stateDir?: string;
}

export declare function startWranglerDev(options?: WranglerDevOptions): Promise<WranglerDev>;

export declare const CHROMIUM: { executablePath: string; args: string[] };

/** Throws, saying how to install it, when /usr/bin/chromium is missing. */
export declare function requireChromium(): void;

/** SIGTERM to the process group `child` leads, SIGKILL to it after `graceMs` (10 s); resolves once the child exited. */
export declare function stopProcessGroup<T>(child: { pid?: number }, exited: Promise<T>, graceMs?: number): Promise<T>;
