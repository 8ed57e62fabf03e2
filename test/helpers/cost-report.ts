// Prints a cost table (route → figures) in the test output and publishes it as a test annotation of type
// "d1-cost", so the figures can be quoted (README) without rerunning anything by hand.
import type { TestContext } from "vitest";

/** The real console.log, kept before any test replaces it with a spy. */
const print = console.log.bind(console);

export async function printCosts(
  context: Pick<TestContext, "annotate">,
  title: string,
  rows: Array<{ route: string; figures: Record<string, number | string> }>,
): Promise<string> {
  const width = Math.max(...rows.map((r) => r.route.length));
  const lines = rows.map((r) => `  ${r.route.padEnd(width)}  ${Object.entries(r.figures).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const text = `${title}\n${lines.join("\n")}`;
  print(text);
  await context.annotate(text, "d1-cost");
  return text;
}
