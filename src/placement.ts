// Placement: OneAccess calls from one Huawei Cloud region, so the event ledger objects and the D1 database
// should live near it. ONEACCESS_REGION names that region; this maps it to the location hints Cloudflare
// accepts. Pure and self-contained: the Worker's configuration and the deploy script both use it.
// docs/placement.md explains each choice and how to add a region.

/** Durable Object `locationHint` values (DurableObjectNamespace.get). */
export type LedgerHint = "wnam" | "enam" | "sam" | "weur" | "eeur" | "apac" | "oc" | "afr" | "me";
/** D1 location hints (`wrangler d1 create --location`): D1 has no South America, Africa or Middle East. */
export type DatabaseHint = "wnam" | "enam" | "weur" | "eeur" | "apac" | "oc";

export const LEDGER_HINTS: readonly LedgerHint[] = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];
export const DATABASE_HINTS: readonly DatabaseHint[] = ["wnam", "enam", "weur", "eeur", "apac", "oc"];

/**
 * Where a database goes when D1 has no location on the object's continent: where that continent's
 * submarine cables land, which is the shortest network path even when another region is closer on a map
 * (South America's cables land in Florida; Africa's and the Gulf's in Marseille, Lisbon and London).
 */
export const DATABASE_FALLBACK: Readonly<Record<Exclude<LedgerHint, DatabaseHint>, DatabaseHint>> = {
  sam: "enam",
  afr: "weur",
  me: "weur",
};

export interface HuaweiRegion {
  /** The console's name for it. */
  name: string;
  /** The Cloudflare region nearest OneAccess (a Durable Object hint; D1 has fewer). */
  nearest: LedgerHint;
}

/**
 * The Huawei Cloud regions this code knows, by region id (Huawei's "Regions and Endpoints" list). To add
 * one, add a line here and a row to the table in docs/placement.md; both hints follow from `nearest`.
 */
export const HUAWEI_REGIONS: Readonly<Record<string, HuaweiRegion>> = {
  "cn-north-1": { name: "CN North-Beijing1", nearest: "apac" },
  "cn-north-2": { name: "CN North-Beijing2", nearest: "apac" },
  "cn-north-4": { name: "CN North-Beijing4", nearest: "apac" },
  "cn-north-9": { name: "CN North-Ulanqab1", nearest: "apac" },
  "cn-east-2": { name: "CN East-Shanghai2", nearest: "apac" },
  "cn-east-3": { name: "CN East-Shanghai1", nearest: "apac" },
  "cn-south-1": { name: "CN South-Guangzhou", nearest: "apac" },
  "cn-south-2": { name: "CN South-Shenzhen", nearest: "apac" },
  "cn-south-4": { name: "CN South-Guangzhou-InvitationOnly", nearest: "apac" },
  "cn-southwest-2": { name: "CN Southwest-Guiyang1", nearest: "apac" },
  "ap-southeast-1": { name: "CN-Hong Kong", nearest: "apac" },
  "ap-southeast-2": { name: "AP-Bangkok", nearest: "apac" },
  "ap-southeast-3": { name: "AP-Singapore", nearest: "apac" },
  "ap-southeast-4": { name: "AP-Jakarta", nearest: "apac" },
  "ap-southeast-5": { name: "AP-Manila", nearest: "apac" },
  "af-south-1": { name: "AF-Johannesburg", nearest: "afr" },
  // Istanbul reaches Europe overland through Sofia and Bucharest: eastern Europe, not the Middle East.
  "tr-west-1": { name: "TR-Istanbul", nearest: "eeur" },
  "me-east-1": { name: "ME-Riyadh", nearest: "me" },
  "ru-northwest-2": { name: "RU-Moscow2", nearest: "eeur" },
  "eu-west-0": { name: "EU-Paris", nearest: "weur" },
  "eu-west-101": { name: "EU-Dublin", nearest: "weur" },
  // Mexico's traffic leaves through Texas and Miami: eastern North America, like the rest of Latin America.
  "na-mexico-1": { name: "LA-Mexico City1", nearest: "enam" },
  "la-north-2": { name: "LA-Mexico City2", nearest: "enam" },
  "la-south-2": { name: "LA-Santiago", nearest: "sam" },
  "sa-brazil-1": { name: "LA-Sao Paulo1", nearest: "sam" },
  "sa-argentina-1": { name: "LA-Buenos Aires1", nearest: "sam" },
  "sa-peru-1": { name: "LA-Lima1", nearest: "sam" },
};

export interface Placement {
  /** The region id, normalised (trimmed, lower case). */
  region: string;
  name: string;
  /**
   * The event ledger's hint: beside its database, not beside OneAccess. An event costs one RPC to the
   * object and one or two D1 round trips from it, so where D1 has no location near OneAccess (South
   * America, Africa, the Middle East) the object next to the database crosses the distance once, not twice.
   */
  ledger: DatabaseHint;
  database: DatabaseHint;
}

export type PlacementResult = { ok: true; placement: Placement | null } | { ok: false; problem: string };

/** The database hint for the region nearest OneAccess: the same when D1 has it, else the fallback. */
export function databaseHintFor(nearest: LedgerHint): DatabaseHint {
  return (DATABASE_HINTS as readonly string[]).includes(nearest) ? (nearest as DatabaseHint) : DATABASE_FALLBACK[nearest as keyof typeof DATABASE_FALLBACK];
}

/**
 * ONEACCESS_REGION → the hints. Empty (or only spaces) means no hint: Cloudflare places each thing near
 * whatever first reaches it. An id this code does not know is refused, never ignored: a typo would
 * otherwise put the database wherever the deploy ran. The problem text does not repeat the value.
 */
export function placementFor(region: string | undefined): PlacementResult {
  const id = (region ?? "").trim().toLowerCase();
  if (id === "") return { ok: true, placement: null };
  const known = Object.hasOwn(HUAWEI_REGIONS, id) ? HUAWEI_REGIONS[id] : undefined;
  if (!known) {
    return {
      ok: false,
      problem: "must be a Huawei Cloud region id this receiver knows (such as cn-north-4 or ap-southeast-3), or empty for no hint: docs/placement.md lists them and says how to add one",
    };
  }
  const database = databaseHintFor(known.nearest);
  return { ok: true, placement: { region: id, name: known.name, ledger: database, database } };
}
