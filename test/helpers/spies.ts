// Bindings that record every use, to prove that a refused request touched no storage.
export function storageSpies(real: Pick<Env, "DB" | "EVENT_LEDGER">) {
  const calls: string[] = [];
  const spy = <T extends object>(name: string, target: T): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(`${name}.${String(prop)}`);
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  return { calls, DB: spy("DB", real.DB), EVENT_LEDGER: spy("EVENT_LEDGER", real.EVENT_LEDGER) };
}
