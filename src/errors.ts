// What of an error may be logged or returned: its class name only. A D1 or Durable Object error message can
// quote a statement's bound values, which come from payloads.
export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}
