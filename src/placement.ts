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
  /** The event ledger's hint: the Cloudflare region nearest OneAccess. */
  ledger: LedgerHint;
}

/**
 * The Huawei Cloud regions this code knows, by region id (Huawei's "Regions and Endpoints" list). To add
 * one, add a line here and a row to the table in docs/placement.md; the database hint follows from `ledger`.
 */
export const HUAWEI_REGIONS: Readonly<Record<string, HuaweiRegion>> = {
  "cn-north-1": { name: "CN North-Beijing1", ledger: "apac" },
  "cn-north-2": { name: "CN North-Beijing2", ledger: "apac" },
  "cn-north-4": { name: "CN North-Beijing4", ledger: "apac" },
  "cn-north-9": { name: "CN North-Ulanqab1", ledger: "apac" },
  "cn-east-2": { name: "CN East-Shanghai2", ledger: "apac" },
  "cn-east-3": { name: "CN East-Shanghai1", ledger: "apac" },
  "cn-south-1": { name: "CN South-Guangzhou", ledger: "apac" },
  "cn-south-2": { name: "CN South-Shenzhen", ledger: "apac" },
  "cn-south-4": { name: "CN South-Guangzhou-InvitationOnly", ledger: "apac" },
  "cn-southwest-2": { name: "CN Southwest-Guiyang1", ledger: "apac" },
  "ap-southeast-1": { name: "CN-Hong Kong", ledger: "apac" },
  "ap-southeast-2": { name: "AP-Bangkok", ledger: "apac" },
  "ap-southeast-3": { name: "AP-Singapore", ledger: "apac" },
  "ap-southeast-4": { name: "AP-Jakarta", ledger: "apac" },
  "ap-southeast-5": { name: "AP-Manila", ledger: "apac" },
  "af-south-1": { name: "AF-Johannesburg", ledger: "afr" },
  // Istanbul reaches Europe overland through Sofia and Bucharest: eastern Europe, not the Middle East.
  "tr-west-1": { name: "TR-Istanbul", ledger: "eeur" },
  "me-east-1": { name: "ME-Riyadh", ledger: "me" },
  "ru-northwest-2": { name: "RU-Moscow2", ledger: "eeur" },
  "eu-west-0": { name: "EU-Paris", ledger: "weur" },
  "eu-west-101": { name: "EU-Dublin", ledger: "weur" },
  // Mexico's traffic leaves through Texas and Miami: eastern North America, like the rest of Latin America.
  "na-mexico-1": { name: "LA-Mexico City1", ledger: "enam" },
  "la-north-2": { name: "LA-Mexico City2", ledger: "enam" },
  "la-south-2": { name: "LA-Santiago", ledger: "sam" },
  "sa-brazil-1": { name: "LA-Sao Paulo1", ledger: "sam" },
  "sa-argentina-1": { name: "LA-Buenos Aires1", ledger: "sam" },
  "sa-peru-1": { name: "LA-Lima1", ledger: "sam" },
};

export interface Placement {
  /** The region id, normalised (trimmed, lower case). */
  region: string;
  name: string;
  ledger: LedgerHint;
  database: DatabaseHint;
}

export type PlacementResult = { ok: true; placement: Placement | null } | { ok: false; problem: string };

/** The database hint for an event ledger hint: the same region when D1 has it, else the fallback. */
export function databaseHintFor(ledger: LedgerHint): DatabaseHint {
  return (DATABASE_HINTS as readonly string[]).includes(ledger) ? (ledger as DatabaseHint) : DATABASE_FALLBACK[ledger as keyof typeof DATABASE_FALLBACK];
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
  return { ok: true, placement: { region: id, name: known.name, ledger: known.ledger, database: databaseHintFor(known.ledger) } };
}
