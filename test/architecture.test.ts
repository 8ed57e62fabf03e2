// The module map of docs/architecture.md, as rules on imports: each layer imports only the layers below it,
// and nothing imports the HTTP layer but the Worker's entry point. Read from the sources themselves
// (vitest.config.ts hands them over), so a new import that breaks the map fails here.
import { describe, expect, it } from "vitest";
import { testEnv } from "./helpers/worker";

/** `from "…"`, `import "…"` and `import("…")` specifiers of a source text. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)["']([^"']+)["']/g)) found.push(m[1]!);
  return found;
}

/** A relative specifier resolved against the importing file (no extension), or the bare package name. */
function resolve(from: string, spec: string): string {
  if (!spec.startsWith(".")) return spec;
  const parts = from.split("/").slice(0, -1);
  for (const segment of spec.split("/")) {
    if (segment === "..") parts.pop();
    else if (segment !== ".") parts.push(segment);
  }
  return parts.join("/");
}

const files = Object.keys(testEnv.SOURCES).sort();
const edges = files.flatMap((file) => specifiers(testEnv.SOURCES[file]!).map((spec) => ({ file, target: resolve(file, spec) })));
const ours = (target: string) => /^(src|sim|emulator|bench)\//.test(target);

/** The layers of src/, from the bottom: a file may import its own layer and the layers listed for it. */
const MAY_IMPORT: Array<[RegExp, RegExp[]]> = [
  [/^src\/errors$/, []],
  [/^src\/placement$/, []],
  [/^src\/protocol\//, [/^src\/protocol\//]],
  [/^src\/config$/, [/^src\/protocol\//, /^src\/placement$/]],
  [/^src\/directory\//, [/^src\/directory\//, /^src\/protocol\//, /^src\/config$/, /^src\/errors$/]],
  // The event ledger pokes the webhook dispatcher after a change (webhooks/poke.ts), never importing the object.
  [/^src\/ingest\//, [/^src\/ingest\//, /^src\/directory\//, /^src\/protocol\//, /^src\/config$/, /^src\/errors$/, /^src\/webhooks\/poke$/]],
  [/^src\/read\//, [/^src\/read\//, /^src\/directory\/(rows|changes)$/]],
  [/^src\/ops\//, [/^src\/ops\//, /^src\/config$/, /^src\/errors$/]],
  // The webhook dispatcher reads the change log as the events API does, and nothing else of the directory.
  [/^src\/webhooks\//, [/^src\/webhooks\//, /^src\/read\/changes$/, /^src\/config$/, /^src\/errors$/]],
  [
    /^src\/http\//,
    [/^src\/http\//, /^src\/ingest\/(ingest|types|cost)$/, /^src\/directory\/rows$/, /^src\/read\//, /^src\/protocol\//, /^src\/config$/, /^src\/errors$/, /^src\/webhooks\/(stub|poke)$/],
  ],
  [/^src\/index$/, [/^src\/http\//, /^src\/ingest\/event-ledger$/, /^src\/ops\//, /^src\/webhooks\/(dispatcher|poke)$/]],
];

describe("the module map's import rules", () => {
  it("reads every source file and finds imports in them", () => {
    expect(files.filter((f) => f.startsWith("src/")).length).toBeGreaterThan(30);
    expect(edges.length).toBeGreaterThan(100);
  });

  for (const [layer, allowed] of MAY_IMPORT) {
    it(`${layer.source} imports only ${allowed.map((a) => a.source).join(", ") || "nothing of ours"}`, () => {
      const broken = edges
        .filter((e) => layer.test(e.file.replace(/\.tsx?$/, "")) && ours(e.target))
        .filter((e) => !allowed.some((a) => a.test(e.target)) && !layer.test(e.target))
        .map((e) => `${e.file} -> ${e.target}`);
      expect(broken).toEqual([]);
    });
  }

  it("every file of src/ is in a layer", () => {
    const unplaced = files.filter((f) => f.startsWith("src/") && !MAY_IMPORT.some(([layer]) => layer.test(f.replace(/\.tsx?$/, ""))));
    expect(unplaced).toEqual([]);
  });

  it("nothing imports the HTTP layer but the Worker's entry point", () => {
    const into = edges.filter((e) => e.target.startsWith("src/http/") && !e.file.startsWith("src/http/") && e.file !== "src/index.ts");
    expect(into.map((e) => `${e.file} -> ${e.target}`)).toEqual([]);
  });

  it("nothing imports the webhook dispatcher's object but the Worker's entry point (the rest reach it through its stub)", () => {
    const into = edges.filter((e) => e.target === "src/webhooks/dispatcher" && !e.file.startsWith("src/webhooks/") && e.file !== "src/index.ts");
    expect(into.map((e) => `${e.file} -> ${e.target}`)).toEqual([]);
    // Inside its folder, only the stub names its type, and only as a type.
    const inside = edges.filter((e) => e.target === "src/webhooks/dispatcher" && e.file.startsWith("src/webhooks/")).map((e) => e.file);
    expect(inside).toEqual(["src/webhooks/stub.ts"]);
    expect(testEnv.SOURCES["src/webhooks/stub.ts"]).toMatch(/import type \{ WebhookDispatcher \} from "\.\/dispatcher"/);
  });

  it("the webhooks sign with Web Crypto: no package is imported but the runtime's", () => {
    const packages = edges.filter((e) => e.file.startsWith("src/webhooks/") && !ours(e.target)).map((e) => `${e.file} -> ${e.target}`);
    expect(packages).toEqual(["src/webhooks/dispatcher.ts -> cloudflare:workers"]);
    const anywhere = edges.filter((e) => e.file.startsWith("src/") && /standardwebhooks|svix|crypto-js|node:crypto/.test(e.target));
    expect(anywhere).toEqual([]);
  });

  it("the tools (sim/, emulator/, bench/) use only the protocol and the configuration of src/", () => {
    const broken = edges
      .filter((e) => !e.file.startsWith("src/") && e.target.startsWith("src/"))
      .filter((e) => !/^src\/(protocol\/|config$)/.test(e.target))
      // The bench's workerd harness measures the receiver's own password hash (PASSWORD_POLICY=pbkdf2).
      .filter((e) => !(e.file === "bench/protocol-worker.ts" && e.target === "src/directory/passwords"))
      .map((e) => `${e.file} -> ${e.target}`);
    expect(broken).toEqual([]);
  });

  it("core code of the tools does not import their command-line code", () => {
    const broken = edges.filter((e) => /\/core\//.test(e.file) && /^(sim|emulator|bench)\/cli\//.test(e.target)).map((e) => `${e.file} -> ${e.target}`);
    expect(broken).toEqual([]);
  });

  it("the protocol layer touches no binding: it is pure functions of its inputs", () => {
    for (const file of files.filter((f) => f.startsWith("src/protocol/"))) {
      expect(testEnv.SOURCES[file], file).not.toMatch(/\benv\.(DB|EVENT_LEDGER)\b/);
    }
  });
});
