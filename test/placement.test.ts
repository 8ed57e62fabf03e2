// ONEACCESS_REGION → location hints (src/placement.ts), checked against literal tables written from
// Cloudflare's lists of hints and from docs/placement.md's table, not against the module's own constants.
import { describe, expect, it } from "vitest";
import placementDoc from "../docs/placement.md?raw";
import { readConfig } from "../src/config";
import { HUAWEI_REGIONS, placementFor, type DatabaseHint, type LedgerHint } from "../src/placement";

/** Durable Object location hints (DurableObjectNamespace.get's `locationHint`). */
const DO_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];
/** D1 location hints (`wrangler d1 create --location`). */
const D1_HINTS = ["wnam", "enam", "weur", "eeur", "apac", "oc"];

/** docs/placement.md's table: region id → [event ledger hint, D1 hint]. */
const EXPECTED: Record<string, [string, string]> = {
  "cn-north-1": ["apac", "apac"],
  "cn-north-2": ["apac", "apac"],
  "cn-north-4": ["apac", "apac"],
  "cn-north-9": ["apac", "apac"],
  "cn-east-2": ["apac", "apac"],
  "cn-east-3": ["apac", "apac"],
  "cn-south-1": ["apac", "apac"],
  "cn-south-2": ["apac", "apac"],
  "cn-south-4": ["apac", "apac"],
  "cn-southwest-2": ["apac", "apac"],
  "ap-southeast-1": ["apac", "apac"],
  "ap-southeast-2": ["apac", "apac"],
  "ap-southeast-3": ["apac", "apac"],
  "ap-southeast-4": ["apac", "apac"],
  "ap-southeast-5": ["apac", "apac"],
  "af-south-1": ["weur", "weur"],
  "tr-west-1": ["eeur", "eeur"],
  "me-east-1": ["weur", "weur"],
  "ru-northwest-2": ["eeur", "eeur"],
  "eu-west-0": ["weur", "weur"],
  "eu-west-101": ["weur", "weur"],
  "na-mexico-1": ["enam", "enam"],
  "la-north-2": ["enam", "enam"],
  "la-south-2": ["enam", "enam"],
  "sa-brazil-1": ["enam", "enam"],
  "sa-argentina-1": ["enam", "enam"],
  "sa-peru-1": ["enam", "enam"],
};

/** The continent each hint stands for: a database may sit on another continent only where D1 has none. */
const CONTINENT: Record<string, string> = {
  wnam: "North America",
  enam: "North America",
  sam: "South America",
  weur: "Europe",
  eeur: "Europe",
  apac: "Asia",
  oc: "Oceania",
  afr: "Africa",
  me: "Middle East",
};
/** Where D1 has no location, the only continents its database may go to instead. */
const NEIGHBOUR: Record<string, string[]> = { "South America": ["North America"], Africa: ["Europe"], "Middle East": ["Europe", "Asia"] };

describe("placementFor", () => {
  it("knows exactly the regions of docs/placement.md", () => {
    expect(Object.keys(HUAWEI_REGIONS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it("docs/placement.md's table says what the code does", () => {
    const rows = [...placementDoc.matchAll(/^\| `([a-z0-9-]+)` \| ([^|]+) \| `([a-z]+)` \| `([a-z]+)` \|$/gm)];
    expect(rows.map((m) => m[1])).toEqual(Object.keys(EXPECTED));
    for (const [, region, name, ledger, database] of rows) {
      expect(placementFor(region), region).toEqual({ ok: true, placement: { region, name: name!.trim(), ledger, database } });
    }
  });

  for (const [region, [ledger, database]] of Object.entries(EXPECTED)) {
    it(`${region} → event ledger ${ledger}, D1 ${database}`, () => {
      const r = placementFor(region);
      expect(r).toMatchObject({ ok: true, placement: { region, ledger, database } });
    });
  }

  it("gives only hints Cloudflare accepts: DO hints to the objects, D1 hints to the database", () => {
    for (const region of Object.keys(EXPECTED)) {
      const r = placementFor(region);
      if (!r.ok || !r.placement) throw new Error(`${region} not placed`);
      expect(DO_HINTS, region).toContain(r.placement.ledger);
      expect(D1_HINTS, region).toContain(r.placement.database);
      expect(r.placement.name, region).not.toBe("");
    }
  });

  it("puts the database on the objects' continent, or on its neighbour where D1 has none there", () => {
    for (const region of Object.keys(EXPECTED)) {
      const r = placementFor(region);
      if (!r.ok || !r.placement) throw new Error(`${region} not placed`);
      const { ledger, database } = r.placement;
      if (D1_HINTS.includes(ledger)) expect(database, region).toBe(ledger);
      else expect(NEIGHBOUR[CONTINENT[ledger]!], region).toContain(CONTINENT[database]);
    }
  });

  it("the two examples of the issue: São Paulo and Johannesburg", () => {
    // The object goes beside its database, not beside OneAccess, where D1 has no location near OneAccess.
    expect(placementFor("sa-brazil-1")).toMatchObject({ ok: true, placement: { ledger: "enam", database: "enam" } });
    expect(placementFor("af-south-1")).toMatchObject({ ok: true, placement: { ledger: "weur", database: "weur" } });
  });

  it("ignores case and surrounding whitespace", () => {
    for (const raw of ["AP-SOUTHEAST-3", " ap-southeast-3 ", "\tAp-Southeast-3\n"]) {
      expect(placementFor(raw), JSON.stringify(raw)).toEqual({
        ok: true,
        placement: { region: "ap-southeast-3", name: "AP-Singapore", ledger: "apac", database: "apac" },
      });
    }
  });

  it("empty, blank or missing means no hint", () => {
    for (const raw of ["", "   ", undefined]) expect(placementFor(raw)).toEqual({ ok: true, placement: null });
  });

  it("refuses what it does not know, without repeating the value", () => {
    for (const raw of ["singapore", "ap-southeast-9", "ap southeast 3", "ap-southeast-3x", "apac", "toString", "__proto__", "constructor"]) {
      const r = placementFor(raw);
      expect(r.ok, raw).toBe(false);
      if (!r.ok) expect(r.problem).not.toContain(raw);
    }
  });

  it("its hint types are the runtime's (checked by tsc)", () => {
    // Fails to compile when LedgerHint and the runtime's DurableObjectLocationHint differ, or when a D1 hint
    // is not also an object hint (databaseHintFor relies on it).
    type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
    const ledgerIsRuntime: Same<LedgerHint, DurableObjectLocationHint> = true;
    const databaseIsLedger: [DatabaseHint] extends [LedgerHint] ? true : false = true;
    expect([ledgerIsRuntime, databaseIsLedger]).toEqual([true, true]);
  });
});

describe("ONEACCESS_REGION in the configuration", () => {
  const valid = { ONEACCESS_BEARER_TOKEN: "bearer-token-of-thirty-two-chars", ONEACCESS_SIGNING_KEY: "signing-key", ONEACCESS_ENCRYPTION_KEY: "u3Hc8VdQ1nYs6FaJ" };

  it("defaults to no hint", () => {
    const r = readConfig(valid);
    expect(r.ok && r.config.placement).toBe(null);
    const blank = readConfig({ ...valid, ONEACCESS_REGION: "  " });
    expect(blank.ok && blank.config.placement).toBe(null);
  });

  it("carries the hints of a known region", () => {
    const r = readConfig({ ...valid, ONEACCESS_REGION: "CN-North-4" });
    expect(r.ok && r.config.placement).toEqual({ region: "cn-north-4", name: "CN North-Beijing4", ledger: "apac", database: "apac" });
  });

  it("an unknown region is a problem naming the setting, not its value", () => {
    const r = readConfig({ ...valid, ONEACCESS_REGION: "eu-central-1" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.setting)).toEqual(["ONEACCESS_REGION"]);
    expect(JSON.stringify(r.problems)).not.toContain("eu-central-1");
  });
});
