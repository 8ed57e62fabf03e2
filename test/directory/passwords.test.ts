// Passwords (contract section 6): dropped by default; with PASSWORD_POLICY=pbkdf2 only a PBKDF2-SHA256 hash
// is stored. The plaintext appears in no table, no reply and no log line either way.
import { afterEach, describe, expect, it, vi } from "vitest";
import { readDirectory } from "../../src/directory/snapshot";
import { unb64 } from "../sender/oneaccess-sender";
import { createUser, db, everyStoredRow, liveUser, send, type SendOptions } from "./support";

const PBKDF2: SendOptions = { env: { PASSWORD_POLICY: "pbkdf2" } };

async function storedHash(id: string) {
  return db().prepare("SELECT password_hash FROM users WHERE id = ?").bind(id).first<string | null>("password_hash");
}

/** Recomputes the hash independently of src/: PBKDF2-SHA256 over the password with the stored salt. */
async function verifies(stored: string, password: string): Promise<boolean> {
  const [scheme, iterations, salt, hash] = stored.split("$");
  expect(scheme).toBe("pbkdf2-sha256");
  expect(iterations).toBe("100000");
  expect(unb64(salt!)).toHaveLength(16);
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: unb64(salt!), iterations: 100_000 }, key, 256);
  const expected = new Uint8Array(bits);
  const actual = unb64(hash!);
  return actual.length === expected.length && actual.every((b, i) => b === expected[i]);
}

/** Everything the Worker logged during `run`, as one text. */
async function logsDuring(run: () => Promise<unknown>): Promise<string> {
  const lines: unknown[][] = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args));
  }
  await run();
  return lines.map((args) => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")).join("\n");
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("PASSWORD_POLICY=drop (default)", () => {
  it("stores nothing of the password, in any table, reply or log", async () => {
    const secret = "Drop-Me-Secret-4471!";
    let sent!: Awaited<ReturnType<typeof send>>;
    const logs = await logsDuring(async () => {
      sent = await send("CREATE_USER", { username: "pw-drop", name: "Drop", password: secret });
    });
    expect(sent.code).toBe("200");
    expect(await storedHash(sent.id!)).toBeNull();
    expect(JSON.stringify(sent)).not.toContain(secret);
    expect(logs).toContain("CREATE_USER"); // the request was logged, and captured here
    expect(logs).not.toContain(secret);
    expect(await everyStoredRow()).not.toContain(secret);
    expect(Object.keys((await liveUser(sent.id!))!)).not.toContain("passwordHash");
  });
});

describe("PASSWORD_POLICY=pbkdf2", () => {
  it("stores a salted PBKDF2-SHA256 hash that verifies, and never the plaintext", async () => {
    const secret = "Hash-Me-Secret-9921!";
    let sent!: Awaited<ReturnType<typeof send>>;
    const logs = await logsDuring(async () => {
      sent = await send("CREATE_USER", { username: "pw-hash", name: "Hash", password: secret }, PBKDF2);
    });
    expect(sent.code).toBe("200");
    const stored = (await storedHash(sent.id!))!;
    expect(await verifies(stored, secret)).toBe(true);
    expect(await verifies(stored, "not the password")).toBe(false);
    expect(logs).toContain("CREATE_USER");
    expect(logs).not.toContain(secret);
    expect(await everyStoredRow()).not.toContain(secret);
    // The read model never carries it.
    expect(JSON.stringify(await readDirectory(db(), { includeDeleted: true }))).not.toContain(stored);
  });

  it("uses a fresh salt per hash: the same password twice gives two different hashes", async () => {
    const a = await createUser("pw-salt-a", { password: "same-password-1" });
    const b = await send("CREATE_USER", { username: "pw-salt-b", name: "B", password: "same-password-1" }, PBKDF2);
    await send("UPDATE_USER", { id: a, username: "pw-salt-a", password: "same-password-1" }, PBKDF2);
    const [ha, hb] = [(await storedHash(a))!, (await storedHash(b.id!))!];
    expect(ha.split("$")[2]).not.toBe(hb.split("$")[2]);
    expect(await verifies(ha, "same-password-1")).toBe(true);
    expect(await verifies(hb, "same-password-1")).toBe(true);
  });

  it("an update without a password keeps the hash; a new password replaces it", async () => {
    const id = (await send("CREATE_USER", { username: "pw-keep", name: "Keep", password: "first-secret-1" }, PBKDF2)).id!;
    const first = (await storedHash(id))!;
    await send("UPDATE_USER", { id, username: "pw-keep", name: "Keep renamed" }, PBKDF2);
    expect(await storedHash(id)).toBe(first);
    await send("UPDATE_USER", { id, username: "pw-keep", password: "second-secret-2" }, PBKDF2);
    const second = (await storedHash(id))!;
    expect(await verifies(second, "second-secret-2")).toBe(true);
    expect(await everyStoredRow()).not.toMatch(/first-secret-1|second-secret-2/);
  });

  it("back on drop, a new password clears the old hash (it no longer matches)", async () => {
    const id = (await send("CREATE_USER", { username: "pw-clear", name: "Clear", password: "old-secret-3" }, PBKDF2)).id!;
    expect(await storedHash(id)).not.toBeNull();
    await send("UPDATE_USER", { id, username: "pw-clear", name: "Still has hash" });
    expect(await storedHash(id)).not.toBeNull();
    await send("UPDATE_USER", { id, username: "pw-clear", password: "new-secret-4" });
    expect(await storedHash(id)).toBeNull();
  });
});
