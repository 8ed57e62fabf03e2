// ONEACCESS_REGION reaches the event ledger: ingest asks for each shard's object with the region's
// locationHint (it only matters when the object is first created), and the runtime accepts the call with a
// hint and without one. The hints expected are literals from docs/placement.md's table.
import { describe, expect, it } from "vitest";
import { readConfig, type Config } from "../../src/config";
import type { EventLedger } from "../../src/ingest/event-ledger";
import { ingest } from "../../src/ingest/ingest";
import type { Envelope } from "../../src/protocol/envelope";
import { storageSpies } from "../helpers/spies";
import { callWorker, CALLBACK_URL, profile, testEnv } from "../helpers/worker";
import { buildRequest } from "../sender/oneaccess-sender";

/** The real namespace, recording the options of every `get`. */
function recordingNamespace() {
  const options: Array<DurableObjectNamespaceGetDurableObjectOptions | undefined> = [];
  const real = testEnv.EVENT_LEDGER;
  const namespace = {
    idFromName: (name: string) => real.idFromName(name),
    get: (id: DurableObjectId, opts?: DurableObjectNamespaceGetDurableObjectOptions) => {
      options.push(opts);
      return real.get(id, opts);
    },
  } as unknown as DurableObjectNamespace<EventLedger>;
  return { namespace, options };
}

function configWith(region: string | undefined): Config {
  const r = readConfig({ ...testEnv, ONEACCESS_REGION: region });
  if (!r.ok) throw new Error(`config refused: ${JSON.stringify(r.problems)}`);
  return r.config;
}

/** A payload refused after authentication: the ledger writes its audit row and records a 400. */
async function ingestRefusal(namespace: DurableObjectNamespace<EventLedger>, config: Config, nonce: string) {
  const envelope: Envelope = {
    nonce,
    timestampText: String(Date.now()),
    timestampMs: Date.now(),
    eventTypeRaw: "CREATE_USER",
    eventType: "CREATE_USER",
    data: "",
    dataWasObject: false,
    signature: nonce,
  };
  return ingest(namespace, config, {
    replayKey: `location-hint-${nonce}`,
    envelope,
    opened: { ok: false, failure: { kind: "bad-request", message: "bad payload" } },
    receivedAtMs: Date.now(),
  });
}

describe("the event ledger's locationHint", () => {
  it("is left out when ONEACCESS_REGION is empty", async () => {
    for (const region of [undefined, "", "  "]) {
      const { namespace, options } = recordingNamespace();
      const r = await ingestRefusal(namespace, configWith(region), `no-hint-${JSON.stringify(region)}`);
      expect(r.outcome.state).toBe("done");
      expect(options).toHaveLength(1);
      expect(options[0]?.locationHint).toBeUndefined();
    }
  });

  for (const [region, hint] of [
    ["ap-southeast-3", "apac"],
    // Beside the database where D1 has no location near OneAccess.
    ["sa-brazil-1", "enam"],
    ["af-south-1", "weur"],
    ["me-east-1", "weur"],
    [" TR-West-1 ", "eeur"],
  ] as const) {
    it(`is ${hint} for ONEACCESS_REGION=${JSON.stringify(region)}, and the runtime takes it`, async () => {
      const { namespace, options } = recordingNamespace();
      const r = await ingestRefusal(namespace, configWith(region), `hint-${region.trim()}`);
      expect(r.outcome).toMatchObject({ state: "done", reply: { code: "400" } });
      expect(options).toEqual([{ locationHint: hint }]);
    });
  }

  it("an unknown region: every callback is a 500 naming the setting, and no object or database is touched", async () => {
    const spies = storageSpies(testEnv);
    const { request } = await buildRequest(CALLBACK_URL, profile("sha1+gcm"), "CHECK_URL", "placement");
    const res = await callWorker(request, { ONEACCESS_REGION: "ap-southeast-99", DB: spies.DB, EVENT_LEDGER: spies.EVENT_LEDGER });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: "500", message: "server misconfigured: ONEACCESS_REGION", data: "" });
    expect(spies.calls).toEqual([]);
  });
});
