// The simulator's core driven through the Worker's own fetch: the same code the CLI runs in Node.
import { readDirectory } from "../../src/directory/snapshot";
import type { IntendedDirectory } from "../../sim/core/company";
import { DEFAULT_LAYOUT, type SimProfile } from "../../sim/core/profile";
import { Sender } from "../../sim/core/wire";
import type { SenderProfile } from "../sender/oneaccess-sender";
import { CALLBACK_URL, callWorker, envFor, profile, testEnv } from "../helpers/worker";

export type ProfileName = Parameters<typeof profile>[0];
export type Layout = NonNullable<SenderProfile["layout"]>;

export const PROFILES: ReadonlyArray<{ label: string; name: ProfileName; layout?: Layout }> = [
  { label: "sha1 + aes-gcm iv16-b64-prefix", name: "sha1+gcm", layout: "iv16-b64-prefix" },
  { label: "sha1 + aes-gcm iv12", name: "sha1+gcm", layout: "iv12" },
  { label: "sha1 + aes-gcm iv16", name: "sha1+gcm", layout: "iv16" },
  { label: "hmac-sha256 + aes-gcm iv12", name: "hmac+gcm", layout: "iv12" },
  { label: "sha1 + aes-cbc", name: "sha1+cbc" },
  { label: "none + none", name: "none" },
];

/** The simulator's view of one of the test profiles (same keys as the Worker gets through envFor). */
export function simProfile(name: ProfileName, layout?: Layout): SimProfile {
  const p = profile(name, layout);
  return {
    signature: p.signature,
    encryption: p.encryption,
    layout: p.layout ?? DEFAULT_LAYOUT,
    bearer: p.bearer,
    signingKey: p.signingKey,
    encryptionKey: p.encryptionKey,
    receiveId: p.receiveId ?? "",
    toleranceSeconds: Number(testEnv.TIMESTAMP_TOLERANCE_SECONDS),
  };
}

/** The Worker, configured for the profile, as the simulator's `fetch`. */
export function workerFetch(name: ProfileName, layout?: Layout, extraEnv: Record<string, unknown> = {}) {
  const overrides = { ...envFor(profile(name, layout)), ...extraEnv };
  return (request: Request) => callWorker(request, overrides);
}

export function simSender(name: ProfileName, layout?: Layout): Sender {
  return new Sender(simProfile(name, layout), { url: CALLBACK_URL, fetch: workerFetch(name, layout), backoffMs: 5 });
}

/** The directory as the generator describes it: codes instead of ids, no timestamps. */
export async function directoryByCode() {
  const snapshot = await readDirectory(testEnv.DB);
  const codeOf = new Map(snapshot.organizations.map((o) => [o.id, o.code]));
  const organizations = snapshot.organizations
    .map((o) => ({
      code: o.code,
      name: o.name,
      parentCode: o.parentId === null ? null : (codeOf.get(o.parentId) ?? `unknown ${o.parentId}`),
      extensions: { ...o.extensions },
      parentMissing: o.parentMissing,
    }))
    .sort((a, b) => a.code.localeCompare(b.code));
  const users = snapshot.users
    .map((u) => ({
      username: u.username,
      name: u.name,
      orgCode: u.organizationId === null ? null : (codeOf.get(u.organizationId) ?? `unknown ${u.organizationId}`),
      disabled: u.disabled,
      firstName: u.firstName,
      middleName: u.middleName,
      lastName: u.lastName,
      email: u.email,
      mobile: u.mobile,
      extensions: { ...u.extensions },
      organizationMissing: u.organizationMissing,
    }))
    .sort((a, b) => a.username.localeCompare(b.username));
  return { snapshot, organizations, users };
}

/** What `directoryByCode` should return for these intended directories together. */
export function expectedByCode(intended: readonly IntendedDirectory[]) {
  const organizations = intended
    .flatMap((d) => d.organizations)
    .map((o) => ({ code: o.code, name: o.name, parentCode: o.parentCode, extensions: { ...o.extensions }, parentMissing: false }))
    .sort((a, b) => a.code.localeCompare(b.code));
  const users = intended
    .flatMap((d) => d.users)
    .map((u) => ({
      username: u.username,
      name: u.name,
      orgCode: u.orgCode,
      disabled: u.disabled,
      firstName: u.firstName,
      middleName: u.middleName ?? null,
      lastName: u.lastName,
      email: u.email,
      mobile: u.mobile,
      extensions: { ...u.extensions },
      organizationMissing: false,
    }))
    .sort((a, b) => a.username.localeCompare(b.username));
  return { organizations, users };
}
