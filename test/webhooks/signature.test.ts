// The message format, checked by the consumer's own tool: every message the Worker sends verifies with the
// official `standardwebhooks` package (not with code of ours); a changed byte of the body, an id or a timestamp
// does not; a timestamp older than the package's 5-minute tolerance does not (and 300 s still does); during a
// rotation a consumer holding either secret verifies. The body is the change exactly as GET /api/v1/events shows it.
import { beforeEach, describe, expect, it } from "vitest";
import { api, createUser, sendEvent } from "../api/support";
import {
  bodyOf,
  dispatcher,
  PREVIOUS_SECRET,
  SECRET,
  setClock,
  settle,
  sink,
  T0,
  verifyAt,
  verifyError,
  type Received,
} from "./support";

const T0_SECONDS = T0 / 1000;

beforeEach(() => sink.reset());

/** A user created, updated, disabled and deleted through /callback; the four changes as the events API lists them. */
async function fourChanges(username: string) {
  const { body: latest } = await api<{ data: { cursor: string } }>("/events/latest");
  const id = await createUser(username, { email: `${username}@example.com` });
  await sendEvent("UPDATE_USER", { id, username, name: "Renamed" });
  await sendEvent("UPDATE_USER", { id, username, name: "Renamed", disabled: true });
  await sendEvent("DELETE_USER", { id });
  const { body: feed } = await api<{ data: Array<Record<string, unknown>> }>(`/events?after=${latest.data.cursor}`);
  return { id, feed: feed.data.filter((c) => c.entity_id === id) };
}

async function deliveredFor(entityId: string): Promise<Received[]> {
  return (await sink.received()).filter((r) => bodyOf(r).data.entity_id === entityId);
}

describe("every change is one Standard Webhooks message", () => {
  it("verifies with the official package; headers and body as the spec and the events API define them", async () => {
    const d = await dispatcher();
    const { id, feed } = await fourChanges("sig-basic");
    expect(feed.map((c) => c.type)).toEqual(["user.created", "user.updated", "user.disabled", "user.deleted"]);
    await d.poke();
    await settle(d);

    const got = await deliveredFor(id);
    expect(got).toHaveLength(4);
    got.forEach((r, i) => {
      const change = feed[i]!;
      expect(r.method).toBe("POST");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["webhook-id"]).toBe(change.id);
      expect(r.headers["webhook-timestamp"]).toBe(String(T0_SECONDS));
      expect(r.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      // The package returns the parsed body only when a signature matched.
      expect(verifyAt(SECRET, r, T0_SECONDS)).toEqual({ type: change.type, timestamp: change.recorded_at, data: change });
      // Exactly these three keys, in the spec's order; `data` never carries more than the events API shows.
      expect(Object.keys(JSON.parse(r.body))).toEqual(["type", "timestamp", "data"]);
      expect(Object.keys(bodyOf(r).data).sort()).toEqual(Object.keys(change).sort());
    });
  });

  it("a changed body, id or timestamp does not verify", async () => {
    const d = await dispatcher();
    const { id } = await fourChanges("sig-tamper");
    await d.poke();
    await settle(d);
    const [r] = await deliveredFor(id);
    expect(verifyError(SECRET, r!, T0_SECONDS)).toBeNull();

    const body = JSON.parse(r!.body);
    const tampered = JSON.stringify({ ...body, data: { ...body.data, version: body.data.version + 1 } });
    expect(verifyError(SECRET, { ...r!, body: tampered }, T0_SECONDS)).toBe("No matching signature found");
    expect(verifyError(SECRET, { ...r!, body: `${r!.body} ` }, T0_SECONDS)).toBe("No matching signature found");
    const headers = r!.headers;
    expect(verifyError(SECRET, { body: r!.body, headers: { ...headers, "webhook-id": `${headers["webhook-id"]}0` } }, T0_SECONDS)).toBe(
      "No matching signature found",
    );
    expect(verifyError(SECRET, { body: r!.body, headers: { ...headers, "webhook-timestamp": String(T0_SECONDS + 1) } }, T0_SECONDS)).toBe(
      "No matching signature found",
    );
    // Another secret does not verify either.
    expect(verifyError(PREVIOUS_SECRET, r!, T0_SECONDS)).toBe("No matching signature found");
  });

  it("a message older than the consumer's tolerance does not verify: 300 s late still does, 301 s does not", async () => {
    const d = await dispatcher();
    const { id } = await fourChanges("sig-old");
    await d.poke();
    await settle(d);
    const [r] = await deliveredFor(id);
    expect(verifyError(SECRET, r!, T0_SECONDS + 300)).toBeNull();
    expect(verifyError(SECRET, r!, T0_SECONDS + 301)).toBe("Message timestamp too old");
    expect(verifyError(SECRET, r!, T0_SECONDS - 300)).toBeNull();
    expect(verifyError(SECRET, r!, T0_SECONDS - 301)).toBe("Message timestamp too new");
  });

  it("during a rotation both signatures are sent, space-separated, and either secret verifies", async () => {
    const d = await dispatcher({ env: { WEBHOOK_SECRET: SECRET, WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET } });
    const { id } = await fourChanges("sig-rotation");
    await d.poke();
    await settle(d);
    const got = await deliveredFor(id);
    expect(got).toHaveLength(4);
    for (const r of got) {
      expect(r.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
      expect(verifyError(SECRET, r, T0_SECONDS)).toBeNull();
      expect(verifyError(PREVIOUS_SECRET, r, T0_SECONDS)).toBeNull();
      expect(verifyError(`whsec_${btoa("a third key nobody was given, 32")}`, r, T0_SECONDS)).toBe("No matching signature found");
    }
    // Without the previous secret, only the current one.
    await sink.reset();
    const after = await dispatcher();
    const next = await fourChanges("sig-after-rotation");
    await after.poke();
    await settle(after);
    for (const r of await deliveredFor(next.id)) {
      expect(r.headers["webhook-signature"]!.split(" ")).toHaveLength(1);
      expect(verifyError(PREVIOUS_SECRET, r, T0_SECONDS)).toBe("No matching signature found");
    }
  });

  it("a retry keeps its webhook-id and body and is signed anew with its own timestamp", async () => {
    const d = await dispatcher();
    const { id } = await fourChanges("sig-retry");
    await sink.mode({ byEntity: { [id]: 503 } });
    await d.poke();
    await settle(d);
    await sink.mode({});
    await setClock(d, T0 + 45_000);
    await settle(d);
    const got = await deliveredFor(id);
    const first = got.filter((r) => r.headers["webhook-id"] === got[0]!.headers["webhook-id"]);
    expect(first.map((r) => r.answered)).toEqual([503, 200]);
    expect(first[1]!.body).toBe(first[0]!.body);
    expect(first.map((r) => r.headers["webhook-timestamp"])).toEqual([String(T0_SECONDS), String(T0_SECONDS + 45)]);
    expect(verifyError(SECRET, first[1]!, T0_SECONDS + 45)).toBeNull();
    // The first attempt's signature does not fit the retry's timestamp.
    expect(verifyError(SECRET, { body: first[1]!.body, headers: { ...first[1]!.headers, "webhook-signature": first[0]!.headers["webhook-signature"]! } }, T0_SECONDS + 45)).toBe(
      "No matching signature found",
    );
  });
});
