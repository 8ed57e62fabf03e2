// The CLIs' argument parser (sim/cli/args.ts) against Node's own util.parseArgs: each row below is what
// Node 20.20's util.parseArgs answered for the same arguments and options (strict mode), recorded by running
// it; the parser must give the same values and positionals, or refuse with the same error code.
import { describe, expect, it } from "vitest";
import { ArgsError, integerOption, parseArgs, UsageError } from "../../sim/cli/args";

const options = {
  url: { type: "string" },
  port: { type: "string", default: "8788" },
  "no-check": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
  out: { type: "string", short: "o" },
} as const;

type Expected = { values: Record<string, string | boolean>; positionals: string[] } | { code: string };

// [args, allowPositionals, what util.parseArgs returned or the code of what it threw]
const NODE: Array<[string[], boolean, Expected]> = [
  [["--url", "http://x", "a", "b"], true, { values: { url: "http://x", port: "8788" }, positionals: ["a", "b"] }],
  [["--url", "http://x", "a", "b"], false, { code: "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" }],
  [["--url=http://x=y"], false, { values: { url: "http://x=y", port: "8788" }, positionals: [] }],
  [["--url="], false, { values: { url: "", port: "8788" }, positionals: [] }],
  [["--port", "9", "--port=10"], false, { values: { port: "10" }, positionals: [] }],
  [["-h"], false, { values: { help: true, port: "8788" }, positionals: [] }],
  [["-vh"], false, { values: { verbose: true, help: true, port: "8788" }, positionals: [] }],
  [["-o", "file"], false, { values: { out: "file", port: "8788" }, positionals: [] }],
  [["-ofile"], false, { values: { out: "file", port: "8788" }, positionals: [] }],
  [["-vofile"], false, { values: { verbose: true, out: "file", port: "8788" }, positionals: [] }],
  [["-ho", "f"], false, { values: { help: true, out: "f", port: "8788" }, positionals: [] }],
  [["-oh"], false, { values: { out: "h", port: "8788" }, positionals: [] }],
  [["a", "--", "--url", "-h"], true, { values: { port: "8788" }, positionals: ["a", "--url", "-h"] }],
  [["a", "--", "--url", "-h"], false, { code: "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" }],
  [["-"], true, { values: { port: "8788" }, positionals: ["-"] }],
  [["-"], false, { code: "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" }],
  [["--url", "-x"], true, { code: "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" }],
  [["--url", "-"], false, { values: { url: "-", port: "8788" }, positionals: [] }],
  [["--url"], true, { code: "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" }],
  [["-o"], false, { code: "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" }],
  [["--no-check=1"], false, { code: "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" }],
  [["--colour"], true, { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" }],
  [["--colour"], false, { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" }],
  [["-x"], true, { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" }],
  [["--no-check", "--help"], false, { values: { "no-check": true, help: true, port: "8788" }, positionals: [] }],
];

describe("the CLIs' parseArgs", () => {
  it.each(NODE)("%j (positionals allowed: %s) as util.parseArgs", (args, allowPositionals, expected) => {
    const run = () => parseArgs({ args, options, allowPositionals });
    if ("code" in expected) {
      let thrown: unknown;
      try {
        run();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ArgsError);
      expect((thrown as ArgsError).code).toBe(expected.code);
    } else {
      expect(run()).toEqual(expected);
    }
  });

  it("words its refusals for the CLIs, naming the argument", () => {
    const message = (args: string[]) => {
      try {
        parseArgs({ args, options });
        return null;
      } catch (e) {
        return e instanceof UsageError ? e.message : `not a UsageError: ${String(e)}`;
      }
    };
    expect(message(["--colour"])).toBe("unknown option --colour");
    expect(message(["--colour=red"])).toBe("unknown option --colour");
    expect(message(["-x"])).toBe("unknown option -x");
    expect(message(["--url"])).toBe("--url needs a value");
    expect(message(["--url", "--port"])).toBe("--url needs a value: --port looks like an option (write --url=--port if it is the value)");
    expect(message(["--no-check=yes"])).toBe("--no-check takes no value");
    expect(message(["stray"])).toBe("unexpected argument stray");
    expect(message(["--__proto__"])).toBe("unknown option --__proto__");
  });

  it("integer options: digits only, within bounds, the fallback when absent", () => {
    expect(integerOption("orgs", undefined, 20, 1)).toBe(20);
    expect(integerOption("orgs", "5", 20, 1)).toBe(5);
    expect(() => integerOption("orgs", "0", 20, 1)).toThrow("--orgs must be an integer of at least 1");
    expect(() => integerOption("orgs", "1e3", 20, 1)).toThrow("--orgs must be an integer of at least 1");
    expect(() => integerOption("port", "70000", 8788, 1, 65535)).toThrow("--port must be an integer from 1 to 65535");
  });

  it("workerd's own node:util parseArgs is a stub that throws (why this module exists)", async () => {
    // If this fails, workerd implements util.parseArgs now: sim/cli/args.ts can become `export { parseArgs }
    // from "node:util"` (keeping the messages).
    const specifier = "node:util";
    const util = (await import(/* @vite-ignore */ specifier)) as { parseArgs: (config: unknown) => unknown };
    expect(() => util.parseArgs({ args: [], options: {} })).toThrow(/not implemented/);
  });
});
