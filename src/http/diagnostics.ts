// What this isolate saw, kept in its memory only: a request that failed authentication writes nothing to
// storage. In production OneAccess's requests and the operator's browser usually reach different isolates,
// so this view is a convenience labelled "seen by this instance"; the logs are the source of truth.

/** How many refusals the view keeps, newest first. */
export const RECENT_REFUSALS = 20;

export interface Refusal {
  at: string;
  code: string;
  /** The precise reason (a fixed token or a field name, never a value). */
  reason: string | null;
  eventType: string | null;
  /** Which setting to change, when a signature verifies under the other algorithm. */
  hint?: string;
}

export interface Diagnostics {
  recentRefusals: Refusal[];
  signatureHint: { hint: string; at: string } | null;
  /** Secret name -> when a request last authenticated or opened with its `*_PREVIOUS` value. */
  previousKeyLastUsed: Record<string, string>;
}

export const diagnostics: Diagnostics = { recentRefusals: [], signatureHint: null, previousKeyLastUsed: {} };

export function noteRefusal(refusal: Omit<Refusal, "at">): void {
  const at = new Date().toISOString();
  diagnostics.recentRefusals.unshift({ at, ...refusal });
  diagnostics.recentRefusals.length = Math.min(diagnostics.recentRefusals.length, RECENT_REFUSALS);
  if (refusal.hint) diagnostics.signatureHint = { hint: refusal.hint, at };
}
