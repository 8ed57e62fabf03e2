// The command lines of `npm run simulate`, `npm run emulator` and `npm run bench`: Node's `util.parseArgs`
// (strict mode), as a module of its own. The simulator's and the emulator's CLIs also run inside workerd (the
// tests drive them through the Worker), and workerd's `node:util` (nodejs_compat) exports `parseArgs` only
// as a stub that throws "node:util parseArgs is not implemented" (workerd 1.20260426: "We currently have no
// plans to implement the util.parseArgs API"). So this is `util.parseArgs` for the options these CLIs have
// (string and boolean options, short aliases, defaults, positionals): the same configuration, the same
// result, the same rules, token by token, as Node 20's implementation (test/simulator/args.test.ts holds
// Node's own answers). Only the error messages are the CLIs' wording. Swapping in `node:util` is one import
// the day workerd has it.

export interface OptionConfig {
  type: "string" | "boolean";
  /** A one-letter alias: `-h` for `--help`. */
  short?: string;
  default?: string | boolean;
}

export type OptionsConfig = Readonly<Record<string, OptionConfig>>;

/** `values`: each option given (the last one given wins) or defaulted, typed by its `type`. */
export type ParsedValues<O extends OptionsConfig> = { -readonly [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean };

export interface ParseArgsConfig<O extends OptionsConfig> {
  args: readonly string[];
  options: O;
  /** Arguments that are not options; refused unless allowed (util.parseArgs's default). */
  allowPositionals?: boolean;
}

/** A command line the command cannot use: printed as is, with a pointer to the usage. */
export class UsageError extends Error {}

/** The ways util.parseArgs refuses a command line (its error codes), in the CLIs' words. */
export type ArgsErrorCode = "ERR_PARSE_ARGS_UNKNOWN_OPTION" | "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" | "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL";

export class ArgsError extends UsageError {
  constructor(
    readonly code: ArgsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** util.parseArgs's `isOptionLikeValue`: a value that looks like an option (`-x`, not a lone `-`). */
const optionLike = (value: string) => value.length > 1 && value.startsWith("-");

export function parseArgs<const O extends OptionsConfig>(config: ParseArgsConfig<O>): { values: ParsedValues<O>; positionals: string[] } {
  const { options } = config;
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const longFor = (short: string) => Object.keys(options).find((name) => options[name]!.short === short);

  /** One option as typed (`--name`, `-n`): `inline` is a value written into the argument itself. */
  const store = (name: string, typed: string, inline: string | undefined, rest: string[]) => {
    const option = Object.hasOwn(options, name) ? options[name]! : undefined;
    if (option === undefined) throw new ArgsError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `unknown option ${typed}`);
    if (option.type === "boolean") {
      if (inline !== undefined) throw new ArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `--${name} takes no value`);
      values[name] = true;
      return;
    }
    if (inline !== undefined) {
      values[name] = inline;
      return;
    }
    const next = rest.shift();
    if (next === undefined) throw new ArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `--${name} needs a value`);
    if (optionLike(next)) {
      throw new ArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `--${name} needs a value: ${next} looks like an option (write --${name}=${next} if it is the value)`);
    }
    values[name] = next;
  };

  const rest = [...config.args];
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (arg === "--") {
      // Everything after it is a positional, whatever it looks like.
      for (const p of rest.splice(0)) addPositional(p);
    } else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      store(name, `--${name}`, eq < 0 ? undefined : arg.slice(eq + 1), rest);
    } else if (arg.length > 1 && arg.startsWith("-")) {
      // `-h`; `-vh` (booleans together); `-ofile` and `-vofile` (a string option takes the rest as its value).
      for (let i = 1; i < arg.length; i++) {
        const letter = arg[i]!;
        const name = longFor(letter);
        if (name === undefined) throw new ArgsError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `unknown option -${letter}`);
        const inline = options[name]!.type === "string" && i < arg.length - 1 ? arg.slice(i + 1) : undefined;
        store(name, `-${letter}`, inline, rest);
        if (inline !== undefined) break;
      }
    } else {
      addPositional(arg);
    }
  }
  for (const [name, option] of Object.entries(options)) {
    if (option.default !== undefined && !Object.hasOwn(values, name)) values[name] = option.default;
  }
  return { values: values as ParsedValues<O>, positionals };

  function addPositional(arg: string) {
    if (!config.allowPositionals) throw new ArgsError("ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", `unexpected argument ${arg}`);
    positionals.push(arg);
  }
}

/** An integer option's value (digits only), `fallback` when it was not given, refused outside [min, max]. */
export function integerOption(name: string, value: string | undefined, fallback: number, min: number, max?: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (/^[0-9]+$/.test(value) && n >= min && (max === undefined || n <= max)) return n;
  throw new UsageError(max === undefined ? `--${name} must be an integer of at least ${min}` : `--${name} must be an integer from ${min} to ${max}`);
}
