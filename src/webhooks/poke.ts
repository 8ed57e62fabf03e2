// The event ledger's poke: after it applied an event, it tells the dispatcher there is something new in the
// change log, so a change is sent within seconds instead of at the next heartbeat. Limited to one poke
// per POKE_INTERVAL_MS per ledger object, plus one trailing poke for changes made inside that interval, so a
// 20 000-event sync does not double the Durable Object requests. A lost poke loses nothing: the dispatcher's
// heartbeat reads the log anyway.
import { loadConfig } from "../config";
import { errorName } from "../errors";
import { dispatcherStub } from "./stub";

/** Shortest time between two pokes from one ledger object. */
export const POKE_INTERVAL_MS = 5_000;

/** Whether webhooks are wanted at all: the dispatcher checks the rest of the settings. */
export function webhooksWanted(env: Env): boolean {
  return typeof env.WEBHOOK_URL === "string" && env.WEBHOOK_URL.trim() !== "";
}

/** The dispatcher's location hint: the event ledger's, beside the database it reads (placement.ts). */
export function dispatcherHint(env: Env): DurableObjectLocationHint | undefined {
  const config = loadConfig(env);
  return config.ok ? config.config.placement?.ledger : undefined;
}

/** The daily cron's poke: restarts the heartbeat should every alarm since the last one have been lost. */
export async function wakeDispatcher(env: Env): Promise<void> {
  if (!webhooksWanted(env)) return;
  try {
    await dispatcherStub(env.WEBHOOK_DISPATCHER, dispatcherHint(env)).poke();
  } catch (e) {
    console.warn(JSON.stringify({ msg: "webhook poke failed", error: errorName(e) }));
  }
}

/** Per ledger object, in its memory: when it last poked and whether a trailing poke is owed. */
export class DispatcherPoke {
  private lastPokeAt = Number.NEGATIVE_INFINITY;
  private trailingOwed = false;
  /** The last poke sent, for tests to wait on (it is never awaited on the request's path). */
  sent: Promise<void> = Promise.resolve();

  /** `schedule` runs the trailing poke later (setTimeout; tests hold it instead of waiting). */
  constructor(
    private readonly clock: () => number,
    private readonly schedule: (run: () => void, ms: number) => unknown = (run, ms) => setTimeout(run, ms),
  ) {}

  /** A change was recorded: poke now, or once the interval since the last poke has passed. */
  changed(env: Env): void {
    if (!webhooksWanted(env)) return;
    const now = this.clock();
    const wait = this.lastPokeAt + POKE_INTERVAL_MS - now;
    if (wait <= 0) {
      this.poke(env, now);
    } else if (!this.trailingOwed) {
      this.trailingOwed = true;
      this.schedule(() => {
        this.trailingOwed = false;
        this.poke(env, this.clock());
      }, wait);
    }
  }

  private poke(env: Env, now: number): void {
    this.lastPokeAt = now;
    this.sent = dispatcherStub(env.WEBHOOK_DISPATCHER, dispatcherHint(env))
      .poke()
      .catch((e: unknown) => console.warn(JSON.stringify({ msg: "webhook poke failed", error: errorName(e) })));
  }
}
