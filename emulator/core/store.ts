// Where the emulator keeps its state between requests and across restarts. The Node runner keeps it in a
// JSON file (scripts/emulator.mjs); tests keep it in memory. Both hold the JSON text, so a "restart" (a new
// emulator over the same store) sees exactly what a new process would read back.
import type { EmulatorState } from "./state";

export interface StateStore {
  /** The saved state (parsed JSON), or null when nothing was saved yet. */
  load(): Promise<unknown>;
  save(state: EmulatorState): Promise<void>;
  /** Where the state lives, for messages ("memory", a file path). */
  readonly description: string;
}

export class MemoryStore implements StateStore {
  readonly description = "memory";
  private text: string | null = null;

  async load(): Promise<unknown> {
    return this.text === null ? null : JSON.parse(this.text);
  }

  async save(state: EmulatorState): Promise<void> {
    this.text = JSON.stringify(state);
  }
}
