// The bench's webhook sink: a Node `http` server on 127.0.0.1 (a free port) that answers 204 to every POST
// and counts what it got: messages, distinct `webhook-id`s (per path: each wrangler dev the bench starts
// posts to a path of its own, and numbers its changes from 1), and, given the secret, the messages whose
// Standard Webhooks signature does not verify (answered 204 all the same, so a refusal never turns into the
// dispatcher's retries). Runs as a process of its own, forked by bench-host.mjs, so its CPU time is charged
// neither to the bench's load generator nor to wrangler dev. Talks to the bench over the IPC channel:
//   ← {type: "start", seq, secret}     → {type: "listening", seq, port}
//   ← {type: "counts", seq}            → {type: "counts", seq, counts}
// and exits when the channel closes (the bench stopped it, or exited).
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

/** Per path: messages, distinct ids, signatures that did not verify, when the newest id first came. */
const paths = new Map();
let otherRequests = 0;
let verifier = null;

function tally(path) {
  let t = paths.get(path);
  if (!t) paths.set(path, (t = { messages: 0, ids: new Set(), notVerified: 0, newestIdAt: null }));
  return t;
}

function verified(body, headers) {
  if (verifier === null) return true;
  try {
    const h = { "webhook-id": headers["webhook-id"] ?? "", "webhook-timestamp": headers["webhook-timestamp"] ?? "", "webhook-signature": headers["webhook-signature"] ?? "" };
    verifier.verify(body, h, { jsonParse: false });
    return true;
  } catch {
    return false;
  }
}

const server = createServer((req, res) => {
  if (req.method !== "POST") {
    otherRequests++;
    req.resume();
    res.writeHead(405, { allow: "POST" }).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const t = tally(new URL(req.url ?? "/", "http://sink").pathname);
    t.messages++;
    const id = req.headers["webhook-id"];
    if (typeof id === "string" && id !== "" && !t.ids.has(id)) {
      t.ids.add(id);
      t.newestIdAt = performance.now();
    }
    if (!verified(Buffer.concat(chunks).toString("utf8"), req.headers)) t.notVerified++;
    res.writeHead(204).end();
  });
});

function counts() {
  const byPath = {};
  let messages = 0;
  let distinctIds = 0;
  let notVerified = 0;
  const now = performance.now();
  for (const [path, t] of paths) {
    // How long ago the last new id came: the bench places it on its own clock.
    const msSinceNewestId = t.newestIdAt === null ? null : now - t.newestIdAt;
    byPath[path] = { messages: t.messages, distinctIds: t.ids.size, notVerified: t.notVerified, msSinceNewestId };
    messages += t.messages;
    distinctIds += t.ids.size;
    notVerified += t.notVerified;
  }
  const cpu = process.cpuUsage();
  return { messages, distinctIds, notVerified, otherRequests, verifying: verifier !== null, cpuMs: (cpu.user + cpu.system) / 1000, byPath };
}

process.on("message", (m) => {
  if (m?.type === "start") {
    verifier = m.secret ? new Webhook(m.secret) : null;
    server.listen(0, "127.0.0.1", () => process.send?.({ type: "listening", seq: m.seq, port: server.address().port }));
  } else if (m?.type === "counts") {
    process.send?.({ type: "counts", seq: m.seq, counts: counts() });
  }
});
process.on("disconnect", () => {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
});
