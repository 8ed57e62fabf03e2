// Types of processes.mjs (the smoke test's Node-only helpers).

export declare const root: string;

/** Whether any process of the group `pid` leads is still there. */
export declare function processGroupAlive(pid: number): boolean;

/** Whether the group `pid` led is gone within `timeoutMs` (default 5 s). */
export declare function processGroupGone(pid: number, timeoutMs?: number): Promise<boolean>;

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export interface NodeProcess {
  /** The node process, leader of its own process group. */
  pid: number;
  /** Every complete line printed on stdout so far. */
  lines(): string[];
  stderr(): string;
  /** stdout and stderr, for a failure message. */
  output(): string;
  /** The first line matching `pattern`; rejects when the process exits first or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  exited: Promise<ExitStatus>;
  /** SIGTERM to its process group, SIGKILL after 10 s; resolves with its exit status. */
  stop(): Promise<ExitStatus>;
}

/** `node <args>` from the project root, in a process group of its own. */
export declare function startNode(args: string[]): NodeProcess;

/** `node <args>` run to its end (killed after `timeoutMs`). */
export declare function runNode(args: string[], timeoutMs: number): Promise<ExitStatus & { pid: number; stdout: string; stderr: string }>;
