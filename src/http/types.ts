import type { Config } from "../config";

export type AppEnv = {
  Bindings: Env;
  Variables: { config: Config };
};
