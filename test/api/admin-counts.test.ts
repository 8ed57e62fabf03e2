// /admin's Directory card: all eight counters, each with the exact value for a directory seeded through
// /callback (the independent sender), and which of them are highlighted. Expected values are counted by
// hand from the events below, not read from D1 or src/.
import { beforeAll, describe, expect, it } from "vitest";
import { callWorker, testEnv } from "../helpers/worker";
import { createOrg, createUser, sendEvent } from "./support";

const ORIGIN = "https://receiver.test";

async function loginCookie(): Promise<string> {
  const res = await callWorker(
    new Request(`${ORIGIN}/admin/login`, {
      method: "POST",
      headers: { origin: ORIGIN, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: testEnv.DIRECTORY_API_TOKEN }).toString(),
      redirect: "manual",
    }),
  );
  expect(res.status).toBe(303);
  return res.headers.get("set-cookie")!.split(";", 1)[0]!;
}

/** The Directory card's counters, label → value and whether it is highlighted. */
async function counters(): Promise<Record<string, { value: string; highlighted: boolean }>> {
  const res = await callWorker(new Request(`${ORIGIN}/admin`, { headers: { cookie: await loginCookie() }, redirect: "manual" }));
  expect(res.status).toBe(200);
  const html = await res.text();
  const card = /<section class="card" id="counts">([\s\S]*?)<\/section>/.exec(html);
  expect(card, "the Directory card").not.toBeNull();
  const out: Record<string, { value: string; highlighted: boolean }> = {};
  for (const m of card![1]!.matchAll(/<div class="([^"]*)"><dt>([^<]*)<\/dt><dd>([^<]*)<\/dd><\/div>/g)) {
    expect(out[m[2]!], `counter ${m[2]} shown once`).toBeUndefined();
    out[m[2]!] = { value: m[3]!, highlighted: m[1] === "bad" };
  }
  return out;
}

const LABELS = [
  "organizations",
  "users",
  "disabled users",
  "users without organization",
  "organization missing",
  "deleted (kept as tombstones)",
  "deliveries (audit log)",
  "failed deliveries",
];

describe("an empty directory", () => {
  it("shows all eight counters at 0, none highlighted", async () => {
    const shown = await counters();
    expect(Object.keys(shown)).toEqual(LABELS);
    for (const label of LABELS) expect(shown[label], label).toEqual({ value: "0", highlighted: false });
  });
});

describe("a seeded directory", () => {
  // Deliveries: every authenticated callback below leaves one audit row, whatever its outcome.
  let sent = 0;
  let failed = 0;
  const ids: { b?: string; u3?: string } = {};
  const expectCode = async (code: string, eventType: string, payload: unknown) => {
    const reply = await sendEvent(eventType, payload);
    sent++;
    if (code !== "200") failed++;
    expect(reply.code, `${eventType} ${JSON.stringify(payload)}`).toBe(code);
    return reply;
  };
  const counted = async <T>(created: Promise<T>) => {
    const id = await created;
    sent++;
    return id;
  };

  beforeAll(async () => {
    // Organizations: root, a (under root), b (under root, then deleted), orphan (parent unknown).
    const root = await counted(createOrg("c-root", "Root"));
    const a = await counted(createOrg("c-a", "A", root));
    const b = await counted(createOrg("c-b", "B", root));
    ids.b = b;
    await counted(createOrg("c-orphan", "Orphan", "org_unknown00000"));
    await expectCode("200", "DELETE_ORGANIZATION", { id: b });

    // Users, live: u1 in a; u2 in a, disabled; u3 and u4 without organization; u5, u8 and u9 in unknown
    // organizations.
    await counted(createUser("c-u1", { organizationId: a }));
    await counted(createUser("c-u2", { organizationId: a, disabled: true }));
    ids.u3 = await counted(createUser("c-u3"));
    await counted(createUser("c-u4"));
    await counted(createUser("c-u5", { organizationId: "org_unknown00001" }));
    await counted(createUser("c-u8", { organizationId: "org_unknown00003" }));
    await counted(createUser("c-u9", { organizationId: "org_unknown00001" }));
    // Users, then deleted: u6 (disabled, without organization), u7 (unknown organization), u10 (in a), u11
    // (in a, disabled): tombstones only, not disabled, without organization or organization missing.
    const deleted = [
      await counted(createUser("c-u6", { disabled: true })),
      await counted(createUser("c-u7", { organizationId: "org_unknown00002" })),
      await counted(createUser("c-u10", { organizationId: a })),
      await counted(createUser("c-u11", { organizationId: a, disabled: true })),
    ];
    for (const id of deleted) await expectCode("200", "DELETE_USER", { id });

    // A CHECK_URL and a delete of an unknown user (audited, 200), and six refusals after authentication
    // (audited, not 200).
    await expectCode("200", "CHECK_URL", "c-check-url");
    await expectCode("200", "DELETE_USER", { id: "usr_nosuchuser01" });
    await expectCode("404", "UPDATE_USER", { id: "usr_nosuchuser00", username: "c-ghost", disabled: false });
    await expectCode("404", "UPDATE_ORGANIZATION", { id: "org_nosuchorg000", code: "c-ghost", name: "Ghost" });
    await expectCode("404", "UPDATE_ORGANIZATION", { id: "org_nosuchorg001", code: "c-ghost2", name: "Ghost" });
    await expectCode("400", "DELETE_ORGANIZATION", { id: a }); // it has members
    await expectCode("400", "CREATE_USER", { name: "No Username" });
    await expectCode("400", "CREATE_ORGANIZATION", { name: "No Code" });
  });

  it("shows each counter's exact value; organization missing and failed deliveries highlighted", async () => {
    expect(sent).toBe(28); // 5 organization events, 15 user events, 8 others
    expect(failed).toBe(6);
    expect(await counters()).toEqual({
      organizations: { value: "3", highlighted: false }, // root, a, orphan
      users: { value: "7", highlighted: false }, // u1 … u5, u8, u9
      "disabled users": { value: "1", highlighted: false }, // u2
      "users without organization": { value: "2", highlighted: false }, // u3, u4
      "organization missing": { value: "4", highlighted: true }, // orphan's parent; u5's, u8's and u9's organization
      "deleted (kept as tombstones)": { value: "5", highlighted: false }, // b; u6, u7, u10, u11
      "deliveries (audit log)": { value: "28", highlighted: false },
      "failed deliveries": { value: "6", highlighted: true },
    });
  });

  it("follows the directory: a revival and a move change exactly the counters they should", async () => {
    // The deleted b comes back (a create of its code revives it, same id), and u3 moves into it.
    const revived = await expectCode("200", "CREATE_ORGANIZATION", { code: "c-b", name: "B again" });
    expect(revived.id).toBe(ids.b);
    await expectCode("200", "UPDATE_USER", { id: ids.u3, username: "c-u3", organizationId: ids.b });
    expect(sent).toBe(30);
    expect(await counters()).toEqual({
      organizations: { value: "4", highlighted: false }, // root, a, orphan, b
      users: { value: "7", highlighted: false },
      "disabled users": { value: "1", highlighted: false },
      "users without organization": { value: "1", highlighted: false }, // u4
      "organization missing": { value: "4", highlighted: true },
      "deleted (kept as tombstones)": { value: "4", highlighted: false }, // u6, u7, u10, u11
      "deliveries (audit log)": { value: "30", highlighted: false },
      "failed deliveries": { value: "6", highlighted: true },
    });
  });
});
