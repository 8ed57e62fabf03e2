// A one-line progress bar on stderr, redrawn at most ten times a second; only when stderr is a terminal.
import type { Progress } from "../core/sync";

export interface ProgressHost {
  stderr(text: string): void;
  stderrIsTTY: boolean;
  columns: number;
  now(): number;
}

export class ProgressBar {
  private lastDraw = -Infinity;
  private lastPhase: string | null = null;
  private drawn = false;

  constructor(private readonly host: ProgressHost) {}

  update(p: Progress): void {
    if (!this.host.stderrIsTTY) {
      if (p.phase !== this.lastPhase) this.host.stderr(`${p.phase}: from event ${p.done + 1} of ${p.total}\n`);
      this.lastPhase = p.phase;
      return;
    }
    const t = this.host.now();
    if (p.done < p.total && t - this.lastDraw < 100 && p.phase === this.lastPhase) return;
    this.lastDraw = t;
    this.lastPhase = p.phase;
    const pct = p.total === 0 ? 100 : Math.floor((p.done * 100) / p.total);
    const rate = p.elapsedMs > 0 ? ((p.done - p.skipped) * 1000) / p.elapsedMs : 0;
    const tail = ` ${p.done}/${p.total} ${String(pct).padStart(3)}%  ${rate.toFixed(0)} ev/s${p.failed ? `  ${p.failed} failed` : ""}${p.skipped ? `  ${p.skipped} skipped` : ""}`;
    const head = `${p.phase.padEnd(6)} `;
    const width = Math.max(10, Math.min(40, this.host.columns - head.length - tail.length - 3));
    const filled = Math.round((width * pct) / 100);
    this.host.stderr(`\r\x1b[K${head}[${"#".repeat(filled)}${"-".repeat(width - filled)}]${tail}`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.host.stderr("\r\x1b[K");
    this.drawn = false;
  }
}
