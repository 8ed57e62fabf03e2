import { createMiddleware } from "hono/factory";
import { loadConfig } from "../config";
import { toWire } from "../protocol/failures";
import type { AppEnv } from "./types";

/** Loads the validated configuration; a wrong or missing setting answers 500 naming it (never its value). */
export const requireConfig = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const result = loadConfig(c.env);
    if (!result.ok) {
      const setting = result.problems.map((p) => p.setting).join(", ");
      const wire = toWire({ kind: "misconfigured", setting });
      console.error(JSON.stringify({ msg: "configuration invalid", problems: result.problems }));
      return c.json({ ...wire, data: "" }, 500);
    }
    c.set("config", result.config);
    await next();
  });
