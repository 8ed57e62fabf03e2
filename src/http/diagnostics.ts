// Operator diagnostics kept in this isolate's memory only: a request that failed authentication writes
// nothing to storage, but the operator still needs to be told which setting to change.
export interface Diagnostics {
  signatureHint: { hint: string; at: string } | null;
  lastAuthFailure: { reason: string; at: string } | null;
  /** Secret name -> when a request last authenticated or opened with its `*_PREVIOUS` value. */
  previousKeyLastUsed: Record<string, string>;
}

export const diagnostics: Diagnostics = { signatureHint: null, lastAuthFailure: null, previousKeyLastUsed: {} };
