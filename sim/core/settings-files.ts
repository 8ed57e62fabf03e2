// The two files `wrangler dev` reads settings from: .dev.vars (dotenv syntax) and the [vars] table of
// wrangler.toml. Small parsers for exactly what those files hold here; no dependency. Pure functions of the
// files' text (the callers read the files), shared by the simulator's CLI, the emulator and the bench.

/** `NAME=value`, `NAME="value"` (with \n escapes), `NAME='value'`, optional `export`, `#` comments. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw);
    if (!m) continue;
    const name = m[1]!;
    let value = m[2]!.trim();
    if (value.startsWith('"')) {
      const end = closingQuote(value, '"');
      value = value.slice(1, end).replace(/\\n/g, "\n").replace(/\\r/g, "\r").replace(/\\t/g, "\t").replace(/\\(["\\])/g, "$1");
    } else if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      value = value.slice(1, end < 0 ? undefined : end);
    } else {
      value = value.replace(/\s+#.*$/, "").trim();
    }
    out[name] = value;
  }
  return out;
}

function closingQuote(value: string, quote: string): number {
  for (let i = 1; i < value.length; i++) {
    if (value[i] === "\\") i++;
    else if (value[i] === quote) return i;
  }
  return value.length;
}

/**
 * The top-level `[vars]` table of a wrangler.toml: basic and literal strings, numbers, booleans (as text).
 * Environment tables (`[env.x.vars]`) are ignored, as `wrangler dev` without `--env` does.
 */
export function parseWranglerVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let inVars = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("[")) {
      inVars = /^\[\s*vars\s*\]$/.test(line.replace(/\s+#.*$/, ""));
      continue;
    }
    if (!inVars || line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z0-9_-]+|"[^"]+")\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1]!.replace(/^"|"$/g, "");
    const value = m[2]!.trim();
    if (value.startsWith('"')) {
      const end = closingQuote(value, '"');
      out[name] = value.slice(1, end).replace(/\\(["\\])/g, "$1").replace(/\\n/g, "\n");
    } else if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      out[name] = value.slice(1, end < 0 ? undefined : end);
    } else {
      out[name] = value.replace(/\s*#.*$/, "");
    }
  }
  return out;
}
