// One structured line per callback. Only fixed fields: never a key, token, password or payload.
export interface CallbackLogLine {
  eventType: string | null;
  code: string;
  outcome: string;
  reason?: string;
  entityId?: string | null;
  shard?: number;
  durationMs: number;
}

export function logCallback(line: CallbackLogLine): void {
  const record = { msg: "callback", ...line };
  if (Number(line.code) >= 500) console.error(JSON.stringify(record));
  else if (line.code !== "200") console.warn(JSON.stringify(record));
  else console.log(JSON.stringify(record));
}
