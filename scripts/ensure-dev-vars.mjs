#!/usr/bin/env node
// Generated Env types list the secrets named in .dev.vars: make sure it exists (copied from the example).
import { copyFileSync, existsSync } from "node:fs";
if (!existsSync(".dev.vars")) copyFileSync(".dev.vars.example", ".dev.vars");
