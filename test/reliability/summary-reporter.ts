// A vitest reporter (runs in Node, not workerd): collects the one summary line each reliability family
// publishes as a test annotation of type "reliability" (test/reliability/support.ts `summarize`), and
// prints them together after the run, so the figures show even with --silent and in CI logs.
import type { TestAnnotation } from "vitest";
import type { Reporter, TestCase } from "vitest/node";

export default class ReliabilitySummary implements Reporter {
  private readonly lines: string[] = [];

  onTestRunStart(): void {
    this.lines.length = 0;
  }

  onTestCaseAnnotate(_testCase: TestCase, annotation: TestAnnotation): void {
    if (annotation.type === "reliability") this.lines.push(annotation.message);
  }

  onTestRunEnd(): void {
    if (this.lines.length === 0) return;
    console.log(`\nReliability (issue #7), one line per family:\n${[...this.lines].sort().map((l) => `  ${l}`).join("\n")}\n`);
  }
}
