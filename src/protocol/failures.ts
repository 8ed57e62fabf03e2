// Every way a callback can be refused, as one tagged union. `toWire` maps each to the contract's code and
// a short, fixed client message; the precise reason stays in `reason` for the operator's log only.

export type AuthReason =
  | "bearer-missing"
  | "bearer-mismatch"
  | "timestamp-outside-window"
  | "signature-missing"
  | "signature-mismatch"
  | "receive-id-mismatch";

export type Failure =
  | { kind: "method-not-allowed" }
  | { kind: "unsupported-media-type" }
  | { kind: "body-too-large"; limit: number }
  | { kind: "unauthorized"; reason: AuthReason; hint?: string }
  /** `message` is safe for the client: it names a field, never echoes a value. */
  | { kind: "bad-request"; message: string }
  | { kind: "undecryptable"; reason: string }
  | { kind: "not-found"; message: string }
  | { kind: "misconfigured"; setting: string }
  | { kind: "internal"; reason: string };

export type WireCode = "200" | "400" | "401" | "404" | "405" | "413" | "415" | "500";

export const UNAUTHORIZED_MESSAGE = "authentication failed";

export function toWire(failure: Failure): { code: WireCode; message: string } {
  switch (failure.kind) {
    case "method-not-allowed":
      return { code: "405", message: "method not allowed" };
    case "unsupported-media-type":
      return { code: "415", message: "content type must be application/json" };
    case "body-too-large":
      return { code: "413", message: "body too large" };
    case "unauthorized":
      return { code: "401", message: UNAUTHORIZED_MESSAGE };
    case "bad-request":
      return { code: "400", message: failure.message };
    case "undecryptable":
      return { code: "400", message: "data cannot be decrypted" };
    case "not-found":
      return { code: "404", message: failure.message };
    case "misconfigured":
      return { code: "500", message: `server misconfigured: ${failure.setting}` };
    case "internal":
      return { code: "500", message: "internal error, retry later" };
    default: {
      const unreachable: never = failure;
      throw new Error(`unmapped failure ${JSON.stringify(unreachable)}`);
    }
  }
}

export type Result<T> = { ok: true; value: T } | { ok: false; failure: Failure };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(failure: Failure): Result<T> => ({ ok: false, failure });
export const badRequest = <T = never>(message: string): Result<T> => fail({ kind: "bad-request", message });
