#!/usr/bin/env node
// Sends one CHECK_URL to a running receiver the way OneAccess does when its administrator saves the sync
// settings (sha1 signature, aes-gcm), using the secrets in .dev.vars, and opens the reply.
// Usage: node scripts/check-url.mjs [url]   (default http://localhost:8787/callback)
import { readFileSync } from "node:fs";

const url = process.argv[2] ?? "http://localhost:8787/callback";
const vars = Object.fromEntries(
  readFileSync(".dev.vars", "utf8")
    .split("\n")
    .map((line) => /^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/.exec(line))
    .filter(Boolean)
    .map((m) => [m[1], m[2]]),
);
const te = new TextEncoder();
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const letters = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => String.fromCharCode(97 + (b % 26))).join("");

const key = await crypto.subtle.importKey("raw", te.encode(vars.ONEACCESS_ENCRYPTION_KEY), "AES-GCM", false, ["encrypt", "decrypt"]);
const random = `check-${letters(10)}`;
const iv = crypto.getRandomValues(new Uint8Array(16));
const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, te.encode(`${letters(16)}&${random}`)));
const data = b64(iv) + b64(sealed); // the iv16-b64-prefix layout
const nonce = letters(16);
const timestamp = Math.floor(Date.now() / 1000);
const joined = [vars.ONEACCESS_SIGNING_KEY, String(timestamp), nonce, data].sort().join("");
const signature = Buffer.from(await crypto.subtle.digest("SHA-1", te.encode(joined))).toString("hex");

const res = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json; charset=UTF-8", authorization: `Bearer ${vars.ONEACCESS_BEARER_TOKEN}` },
  body: JSON.stringify({ nonce, timestamp, eventType: "CHECK_URL", data, signature }),
});
const reply = await res.json();
console.log(`HTTP ${res.status}`, JSON.stringify(reply));
if (reply.code !== "200") process.exit(1);
const ivR = Buffer.from(reply.data.slice(0, 24), "base64");
const plain = new TextDecoder().decode(
  await crypto.subtle.decrypt({ name: "AES-GCM", iv: ivR }, key, Buffer.from(reply.data.slice(24), "base64")),
);
const echoed = plain.slice(17);
console.log(echoed === random ? `reply opens and echoes "${random}": OK` : `reply echoes "${echoed}", expected "${random}"`);
process.exit(echoed === random ? 0 : 1);
