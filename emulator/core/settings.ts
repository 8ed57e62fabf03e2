// The application's sync settings: callback URL, security token, signature and encryption. At start they
// come from the receiver's own files (wrangler.toml [vars], then .dev.vars, then flags: what `wrangler dev`
// reads), and they are validated by the receiver's own configuration reader (src/config.ts through the
// simulator's profile), so a value the receiver would refuse is refused here under the same name.
import { DEFAULT_LAYOUT, FLAG_SETTINGS, mergeSettings, profileFromSettings, type SimProfile } from "../../sim/core/profile";
import { parseDotenv, parseWranglerVars } from "../../sim/core/settings-files";
import { errors } from "./errors";
import type { Body } from "./validate";
import { DELETION_MODES, type DeletionMode, type GeneralSettings, type SyncSettings } from "./state";

export const DEFAULT_CALLBACK_URL = "http://localhost:8787/callback";

/** Fields of `PUT .../sync-settings` and the receiver's setting each one must equal. */
export const SETTING_FIELDS = {
  security_token: "ONEACCESS_BEARER_TOKEN",
  signature_algorithm: "ONEACCESS_SIGNATURE",
  signing_key: "ONEACCESS_SIGNING_KEY",
  encryption_algorithm: "ONEACCESS_ENCRYPTION",
  encryption_key: "ONEACCESS_ENCRYPTION_KEY",
  gcm_layout: "ONEACCESS_GCM_LAYOUT",
  receive_id: "ONEACCESS_RECEIVE_ID",
} as const;

type SettingField = keyof typeof SETTING_FIELDS;

/** The profile as the receiver's variable names, so a partial change can be merged and checked again. */
export function profileToVars(p: SimProfile): Record<string, string> {
  return {
    ONEACCESS_BEARER_TOKEN: p.bearer,
    ONEACCESS_SIGNATURE: p.signature,
    ONEACCESS_SIGNING_KEY: p.signingKey,
    ONEACCESS_ENCRYPTION: p.encryption,
    ONEACCESS_ENCRYPTION_KEY: p.encryptionKey,
    ONEACCESS_GCM_LAYOUT: p.layout,
    ONEACCESS_RECEIVE_ID: p.receiveId,
  };
}

export function checkCallbackUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw errors.invalid(field, "must be an absolute http or https URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw errors.invalid(field, "must be an absolute http or https URL");
  return url.href;
}

/** `PUT .../sync-settings`: the fields given replace the current ones; the result must be a valid profile. */
export function settingsFromBody(body: Body, current: SyncSettings | null, localDev: boolean): SyncSettings {
  const vars: Record<string, string> = current ? profileToVars(current.profile) : {};
  // The receiver beside a local emulator runs with LOCAL_DEV=true, so the public development values pass here too.
  if (localDev) vars.LOCAL_DEV = "true";
  for (const [field, name] of Object.entries(SETTING_FIELDS) as Array<[SettingField, string]>) {
    const v = body[field];
    if (v === undefined) continue;
    if (v !== null && typeof v !== "string") throw errors.invalid(field, "must be a string");
    vars[name] = v ?? "";
  }
  let callbackUrl = current?.callbackUrl;
  if (body.callback_url !== undefined) {
    if (typeof body.callback_url !== "string" || body.callback_url === "") throw errors.invalid("callback_url", "must be an absolute http or https URL");
    callbackUrl = checkCallbackUrl("callback_url", body.callback_url);
  }
  if (callbackUrl === undefined) throw errors.required("callback_url");
  const result = profileFromSettings(vars);
  if (!result.ok) {
    const problem = result.problems[0]!;
    const field = (Object.entries(SETTING_FIELDS).find(([, name]) => name === problem.setting)?.[0] ?? problem.setting) as string;
    // The receiver's wording, with this API's field names ("is required when ONEACCESS_SIGNATURE is sha1").
    const why = Object.entries(SETTING_FIELDS).reduce((text, [f, name]) => text.replaceAll(name, f), problem.problem);
    throw errors.invalid(field, why);
  }
  return { callbackUrl, profile: result.profile };
}

const masked = (secret: string) => (secret === "" ? "" : "********");

/** What `GET .../sync-settings` shows: every setting, secrets masked. */
export function settingsView(settings: SyncSettings | null, general: GeneralSettings) {
  const p = settings?.profile;
  return {
    callback_url: settings?.callbackUrl ?? "",
    security_token: masked(p?.bearer ?? ""),
    signature_algorithm: p?.signature ?? "",
    signing_key: masked(p?.signingKey ?? ""),
    encryption_algorithm: p?.encryption ?? "",
    encryption_key: masked(p?.encryptionKey ?? ""),
    gcm_layout: p?.encryption === "aes-gcm" ? p.layout : "",
    receive_id: p?.receiveId ?? "",
    general: generalView(general),
  };
}

export function generalView(general: GeneralSettings) {
  return { account_deletion: general.accountDeletion, organization_deletion: general.organizationDeletion };
}

/** `PUT .../sync-settings/general`: what deleting an account or an organization becomes downstream. */
export function generalFromBody(body: Body, current: GeneralSettings): GeneralSettings {
  const mode = (field: string, fallback: DeletionMode): DeletionMode => {
    const v = body[field];
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !(DELETION_MODES as readonly string[]).includes(v)) {
      throw errors.invalid(field, `must be one of ${DELETION_MODES.join(", ")}`);
    }
    return v as DeletionMode;
  };
  return {
    accountDeletion: mode("account_deletion", current.accountDeletion),
    organizationDeletion: mode("organization_deletion", current.organizationDeletion),
  };
}

export interface SettingsFiles {
  /** wrangler.toml's text, or null. */
  wranglerToml: string | null;
  /** .dev.vars (or the file named) text, or null. */
  devVars: string | null;
  /** Options by name (`signature`, `encryption`, `layout`, `receive-id`) as the simulator takes them. */
  flags: Readonly<Partial<Record<string, string | boolean>>>;
  callbackUrl?: string;
}

/** `localDev`: the files set LOCAL_DEV=true, so later setting changes may keep the public development values. */
export type FilesResult = { ok: true; settings: SyncSettings; localDev: boolean } | { ok: false; problems: string[] };

/** The settings `wrangler dev` gives the receiver, read the same way (later sources win), for this side. */
export function settingsFromFiles(files: SettingsFiles): FilesResult {
  const overrides: Record<string, string> = {};
  for (const [flag, name] of Object.entries(FLAG_SETTINGS)) {
    const v = files.flags[flag];
    if (typeof v === "string") overrides[name] = v;
  }
  const vars = mergeSettings(
    files.wranglerToml === null ? {} : parseWranglerVars(files.wranglerToml),
    files.devVars === null ? {} : parseDotenv(files.devVars),
    overrides,
  );
  const result = profileFromSettings(vars);
  if (!result.ok) return { ok: false, problems: result.problems.map((p) => `${p.setting} ${p.problem}`) };
  let callbackUrl: string;
  try {
    callbackUrl = checkCallbackUrl("--url", files.callbackUrl ?? DEFAULT_CALLBACK_URL);
  } catch (e) {
    return { ok: false, problems: [e instanceof Error ? e.message : String(e)] };
  }
  return {
    ok: true,
    settings: { callbackUrl, profile: { ...result.profile, layout: result.profile.layout ?? DEFAULT_LAYOUT } },
    localDev: vars.LOCAL_DEV === "true",
  };
}
