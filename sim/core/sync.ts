// Pushes a company plan to the receiver the way OneAccess does: phase by phase (create, update, move,
// delete), within a phase as many events in flight as the concurrency allows, but never an event before
// the events it depends on (a child unit before its parent's create has answered with the parent's id).
// Ids come only from the receiver's replies: code → id and username → id maps, as OneAccess keeps them.
import { PHASES, type CompanyPlan, type Phase, type Step } from "./company";
import { latencyStats, tally, type LatencyStats } from "./stats";
import { replyId, type Reply, type Sender } from "./wire";

export interface EventRecord {
  key: string;
  phase: Phase;
  eventType: Step["type"];
  /** The org code or username the event is about. */
  subject: string;
  /** `skipped` when it was never sent (a step it needs failed, or an id is missing). */
  code: string;
  message: string;
  latencyMs: number;
  attempts: number;
}

export interface Progress {
  phase: Phase;
  done: number;
  total: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
}

export interface PhaseSummary {
  events: number;
  ok: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
}

export interface SyncSummary {
  /** Events sent (skipped ones excluded). */
  events: number;
  ok: number;
  failed: number;
  skipped: number;
  retries: number;
  /** Failed events by reply code (`network`, `HTTP 502`, `no id` for a 200 create without an id...). */
  failuresByCode: Record<string, number>;
  elapsedMs: number;
  eventsPerSecond: number;
  latency: LatencyStats;
  phases: Record<Phase, PhaseSummary>;
}

export interface SyncResult {
  plan: CompanyPlan;
  records: EventRecord[];
  /** What the receiver answered for each create: org code → id, username → id. */
  orgIds: Map<string, string>;
  userIds: Map<string, string>;
  summary: SyncSummary;
}

export interface SyncOptions {
  concurrency: number;
  onProgress?: (progress: Progress) => void;
  /** A clock for elapsed times; default performance.now(). */
  now?: () => number;
}

type Payload = Record<string, unknown>;

/** The event's data, with ids looked up in the maps; a string names the id that is missing. */
function payloadFor(step: Step, orgIds: Map<string, string>, userIds: Map<string, string>): Payload | string {
  const org = (code: string) => orgIds.get(code);
  const user = (username: string) => userIds.get(username);
  switch (step.type) {
    case "CREATE_ORGANIZATION":
    case "UPDATE_ORGANIZATION": {
      const o = step.org;
      const parentId = o.parentCode === null ? undefined : org(o.parentCode);
      if (o.parentCode !== null && parentId === undefined) return `id of parent ${o.parentCode}`;
      const payload: Payload = {};
      if (step.type === "UPDATE_ORGANIZATION") {
        const id = org(o.code);
        if (id === undefined) return `id of ${o.code}`;
        payload.id = id;
      }
      Object.assign(payload, { code: o.code, name: o.name });
      if (parentId !== undefined) payload.parentId = parentId;
      // Extension attributes go with the create; updates carry the fixed attributes and what changed.
      if (step.type === "CREATE_ORGANIZATION") Object.assign(payload, o.extensions);
      return payload;
    }
    case "DELETE_ORGANIZATION": {
      const id = org(step.code);
      return id === undefined ? `id of ${step.code}` : { id };
    }
    case "CREATE_USER": {
      const u = step.user;
      const organizationId = org(u.orgCode);
      if (organizationId === undefined) return `id of ${u.orgCode}`;
      return {
        username: u.username,
        name: u.name,
        organizationId,
        password: step.password,
        disabled: u.disabled,
        firstName: u.firstName,
        ...(u.middleName ? { middleName: u.middleName } : {}),
        lastName: u.lastName,
        mobile: u.mobile,
        email: u.email,
        ...u.extensions,
      };
    }
    case "UPDATE_USER": {
      const id = user(step.username);
      if (id === undefined) return `id of ${step.username}`;
      const { orgCode, extensions, ...attributes } = step.changes;
      const payload: Payload = { id, username: step.username, disabled: step.disabled, ...attributes };
      if (orgCode !== undefined) {
        const organizationId = org(orgCode);
        if (organizationId === undefined) return `id of ${orgCode}`;
        payload.organizationId = organizationId;
      }
      return { ...payload, ...extensions };
    }
    case "DELETE_USER": {
      const id = user(step.username);
      return id === undefined ? `id of ${step.username}` : { id };
    }
  }
}

function subjectOf(step: Step): string {
  switch (step.type) {
    case "CREATE_ORGANIZATION":
    case "UPDATE_ORGANIZATION":
      return step.org.code;
    case "DELETE_ORGANIZATION":
      return step.code;
    case "CREATE_USER":
      return step.user.username;
    case "UPDATE_USER":
    case "DELETE_USER":
      return step.username;
  }
}

/**
 * Runs `tasks` with at most `concurrency` in flight, each only after its dependencies succeeded; a task
 * whose dependency failed is skipped (and so are its own dependents). `run` must not throw.
 */
export async function runGraph<T extends { key: string; deps: readonly string[] }>(
  tasks: readonly T[],
  concurrency: number,
  run: (task: T) => Promise<boolean>,
  skip: (task: T, because: string) => void,
): Promise<void> {
  const byKey = new Map(tasks.map((t) => [t.key, t]));
  const dependents = new Map<string, T[]>();
  const unmet = new Map<string, number>();
  for (const t of tasks) {
    const inPhase = t.deps.filter((d) => byKey.has(d));
    unmet.set(t.key, inPhase.length);
    for (const d of inPhase) dependents.set(d, [...(dependents.get(d) ?? []), t]);
  }
  const ready = tasks.filter((t) => unmet.get(t.key) === 0);
  const settled = new Set<string>();
  let remaining = tasks.length;
  let running = 0;
  const limit = Math.max(1, Math.floor(concurrency));

  await new Promise<void>((resolve) => {
    const markSkipped = (t: T, because: string) => {
      if (settled.has(t.key)) return;
      settled.add(t.key);
      remaining--;
      skip(t, because);
      for (const d of dependents.get(t.key) ?? []) markSkipped(d, t.key);
    };
    const finish = (t: T, ok: boolean) => {
      settled.add(t.key);
      remaining--;
      for (const d of dependents.get(t.key) ?? []) {
        if (settled.has(d.key)) continue;
        if (!ok) markSkipped(d, t.key);
        else {
          const left = unmet.get(d.key)! - 1;
          unmet.set(d.key, left);
          if (left === 0) ready.push(d);
        }
      }
    };
    const pump = () => {
      while (running < limit && ready.length > 0) {
        const t = ready.shift()!;
        if (settled.has(t.key)) continue;
        running++;
        void run(t).then(
          (ok) => {
            running--;
            finish(t, ok);
            pump();
          },
          () => {
            running--;
            finish(t, false);
            pump();
          },
        );
      }
      if (remaining === 0 && running === 0) resolve();
    };
    pump();
  });
}

export async function runSync(sender: Sender, plan: CompanyPlan, options: SyncOptions): Promise<SyncResult> {
  const now = options.now ?? (() => performance.now());
  const orgIds = new Map<string, string>();
  const userIds = new Map<string, string>();
  const records: EventRecord[] = [];
  const total = plan.steps.length;
  const started = now();
  let failed = 0;
  let skipped = 0;
  const phaseTimes: Partial<Record<Phase, number>> = {};

  for (const phase of PHASES) {
    const steps = plan.steps.filter((s) => s.phase === phase);
    const phaseStarted = now();
    const report = () =>
      options.onProgress?.({ phase, done: records.length, total, failed, skipped, elapsedMs: now() - started });
    const record = (step: Step, code: string, message: string, reply?: Reply) => {
      records.push({
        key: step.key,
        phase,
        eventType: step.type,
        subject: subjectOf(step),
        code,
        message,
        latencyMs: reply?.latencyMs ?? 0,
        attempts: reply?.attempts ?? 0,
      });
      if (code === "skipped") skipped++;
      else if (code !== "200") failed++;
      report();
    };
    report();
    await runGraph(
      steps,
      options.concurrency,
      async (step) => {
        const payload = payloadFor(step, orgIds, userIds);
        if (typeof payload === "string") {
          record(step, "skipped", `missing ${payload}`);
          return false;
        }
        const { reply } = await sender.send(step.type, JSON.stringify(payload));
        if (reply.code !== "200") {
          record(step, reply.code, reply.openError ? `${reply.message} (${reply.openError})` : reply.message, reply);
          return false;
        }
        if (step.type === "CREATE_ORGANIZATION" || step.type === "CREATE_USER") {
          const id = replyId(reply);
          if (id === null) {
            record(step, "no id", reply.openError ? `reply does not open: ${reply.openError}` : "200 without an id", reply);
            return false;
          }
          if (step.type === "CREATE_ORGANIZATION") orgIds.set(step.org.code, id);
          else userIds.set(step.user.username, id);
        }
        record(step, "200", reply.message, reply);
        return true;
      },
      (step, because) => record(step, "skipped", `needs ${because}`),
    );
    phaseTimes[phase] = now() - phaseStarted;
  }

  const elapsedMs = now() - started;
  const sent = records.filter((r) => r.code !== "skipped");
  const phases = Object.fromEntries(
    PHASES.map((phase) => {
      const rs = records.filter((r) => r.phase === phase);
      const ok = rs.filter((r) => r.code === "200").length;
      const sk = rs.filter((r) => r.code === "skipped").length;
      return [phase, { events: rs.length - sk, ok, failed: rs.length - sk - ok, skipped: sk, elapsedMs: phaseTimes[phase] ?? 0 }];
    }),
  ) as Record<Phase, PhaseSummary>;
  const ok = sent.filter((r) => r.code === "200").length;
  return {
    plan,
    records,
    orgIds,
    userIds,
    summary: {
      events: sent.length,
      ok,
      failed: sent.length - ok,
      skipped,
      retries: sent.reduce((n, r) => n + Math.max(0, r.attempts - 1), 0),
      failuresByCode: tally(sent.filter((r) => r.code !== "200").map((r) => r.code)),
      elapsedMs,
      eventsPerSecond: elapsedMs > 0 ? (sent.length * 1000) / elapsedMs : 0,
      latency: latencyStats(sent.map((r) => r.latencyMs)),
      phases,
    },
  };
}
