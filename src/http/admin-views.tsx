// The operator page's HTML (hono/jsx, rendered on the server; no script, no external asset). JSX escapes
// every value it renders; the only raw text is the fixed doctype and stylesheet below.
import type { Child, FC } from "hono/jsx";
import { raw } from "hono/html";
import type { ApiChange } from "../read/changes";
import type { ApiDelivery, ApiUser, DirectoryCounts, TreeOrganization } from "../read/queries";
import type { HeldMessage, WebhookStatus } from "../webhooks/stub";
import type { Refusal } from "./diagnostics";

const CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5f6b7a; --line: #dde2ea; --bg: #f4f6f9; --card: #fff;
  --accent: #2451b7; --ok: #17784a; --ok-bg: #e5f5ec; --bad: #b42318; --bad-bg: #fdecea; --warn: #8a5a00; --warn-bg: #fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink); background: var(--bg); }
header.top { background: #17213a; color: #fff; padding: 12px 24px; display: flex; align-items: center; justify-content: space-between; }
header.top h1 { font-size: 17px; margin: 0; font-weight: 600; }
header.top small { color: #b8c3dc; font-weight: 400; margin-left: 8px; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin-bottom: 18px; }
section.card h2 { font-size: 15px; margin: 0 0 12px; display: flex; align-items: center; gap: 10px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 18px; }
.grid > section.card { margin-bottom: 0; }
.stack { margin-bottom: 18px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 10px; margin: 0; }
.counts div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.counts dt { color: var(--muted); font-size: 12px; }
.counts dd { margin: 2px 0 0; font-size: 20px; font-weight: 600; }
.counts .bad dd { color: var(--bad); }
.pill { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 12px; font-weight: 600; }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.bad { background: var(--bad-bg); color: var(--bad); }
.pill.warn { background: var(--warn-bg); color: var(--warn); }
ul.notes { margin: 10px 0 0; padding: 0; list-style: none; }
ul.notes li { padding: 6px 10px; border-radius: 6px; margin-top: 6px; }
ul.notes li.bad { background: var(--bad-bg); color: var(--bad); }
ul.notes li.warn { background: var(--warn-bg); color: var(--warn); }
ul.notes li.info { background: #eef3fd; color: #1f3f8f; }
ul.secrets { margin: 10px 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 6px; }
ul.secrets li { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; border: 1px solid var(--line); border-radius: 4px; padding: 1px 6px; }
ul.secrets li.unset { color: var(--muted); border-style: dashed; }
ul.secrets li.missing { color: var(--bad); border-color: var(--bad); }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: top; }
td.mono, span.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
td.nowrap { white-space: nowrap; }
tr.failed td { background: var(--bad-bg); }
tr.failed td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
tr.failed td.message { color: var(--bad); font-weight: 600; }
.code { display: inline-block; min-width: 42px; text-align: center; border-radius: 4px; padding: 0 6px; font-weight: 700; font-size: 12px; }
.code.ok { background: var(--ok-bg); color: var(--ok); }
.code.bad { background: var(--bad); color: #fff; }
.muted { color: var(--muted); }
.flag { color: var(--warn); background: var(--warn-bg); border-radius: 4px; padding: 0 5px; font-size: 12px; }
form.inline { display: flex; gap: 8px; align-items: center; margin: 0 0 12px; }
input[type=search], input[type=password] { font: inherit; padding: 6px 9px; border: 1px solid #b9c2d0; border-radius: 6px; min-width: 280px; }
button { font: inherit; font-weight: 600; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.ghost { background: transparent; border-color: #6f7ea3; color: #fff; }
a { color: var(--accent); }
.right { margin-left: auto; font-weight: 400; font-size: 13px; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 18px; }
ul.tree { padding-left: 0; }
ul.tree ul { border-left: 1px dashed #c4ccd8; margin-left: 6px; }
ul.tree li { padding: 3px 0; }
.org-name { font-weight: 600; }
.members { display: inline-block; background: #eef3fd; color: #1f3f8f; border-radius: 999px; padding: 0 8px; font-size: 12px; margin-left: 6px; }
.login { max-width: 420px; margin: 80px auto; }
.login label { display: block; color: var(--muted); margin-bottom: 6px; }
.login input { width: 100%; margin-bottom: 12px; }
.error { background: var(--bad-bg); color: var(--bad); padding: 8px 10px; border-radius: 6px; margin-bottom: 12px; }
form.row { margin: 0; }
button.small { padding: 2px 10px; font-size: 12px; }
h3 { font-size: 14px; margin: 16px 0 8px; }
`;

export const Document: FC<{ title: string; children?: Child }> = ({ title, children }) => (
  <>
    {raw("<!DOCTYPE html>")}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>{title}</title>
        <style>{raw(CSS)}</style>
      </head>
      <body>{children}</body>
    </html>
  </>
);

/** `2026-05-01 09:30:12 UTC` from an ISO time; a dash when unknown. */
export function when(iso: string | null): string {
  return iso === null ? "—" : `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

// --- login ---------------------------------------------------------------------------------------------

export const LoginPage: FC<{ error?: string }> = ({ error }) => (
  <Document title="Log in · OneAccess receiver">
    <main>
      <section class="card login">
        <h2>OneAccess receiver · operator page</h2>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <form method="post" action="/admin/login">
          <label for="token">Directory API token (DIRECTORY_API_TOKEN)</label>
          <input id="token" type="password" name="token" autocomplete="current-password" required autofocus />
          <button type="submit">Log in</button>
        </form>
        <p class="muted">The session lasts 8 hours and ends when the token changes.</p>
      </section>
    </main>
  </Document>
);

export const DisabledPage: FC<{ reason: string }> = ({ reason }) => (
  <Document title="Operator page disabled · OneAccess receiver">
    <main>
      <section class="card login">
        <h2>Operator page disabled</h2>
        <p>{reason.replace("the directory read API is disabled", "The operator page and the read API are disabled")}.</p>
      </section>
    </main>
  </Document>
);

// --- the page ------------------------------------------------------------------------------------------

export interface ConfigStatus {
  ok: boolean;
  problems: Array<{ setting: string; problem: string }>;
  profile: Array<[string, string]>;
  /** Secret names and whether each is set (never a value); `required` ones missing are flagged. */
  secrets: Array<{ name: string; set: boolean; required: boolean }>;
  rotations: Array<{ name: string; lastUsed: string | null }>;
  warnings: string[];
  signatureHint: { hint: string; at: string } | null;
  /** Newest first, from this instance's memory only. */
  recentRefusals: Refusal[];
}

/** The webhook card's state: never a secret, a message body, or more of the URL than its origin. */
export type WebhookView =
  | { state: "off" }
  | { state: "misconfigured"; settings: string[] }
  | { state: "unreachable"; target: string }
  | { state: "on"; target: string; rotation: boolean; status: WebhookStatus };

export interface DashboardProps {
  config: ConfigStatus;
  counts: DirectoryCounts;
  tree: { organizations: TreeOrganization[]; truncated: boolean };
  search: { q: string; error: string | null; users: ApiUser[]; more: boolean } | null;
  deliveries: ApiDelivery[];
  /** The change feed's newest changes, newest first. */
  changes: ApiChange[];
  webhooks: WebhookView;
  failuresOnly: boolean;
  renderedAt: string;
}

const ConfigCard: FC<{ config: ConfigStatus }> = ({ config }) => (
  <section class="card" id="configuration">
    <h2>
      Configuration
      {config.ok ? <span class="pill ok">ready</span> : <span class="pill bad">misconfigured</span>}
      {config.rotations.length > 0 ? <span class="pill warn">rotation in progress</span> : null}
    </h2>
    {config.profile.length > 0 ? (
      <dl class="kv">
        {config.profile.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </>
        ))}
      </dl>
    ) : null}
    <ul class="secrets" aria-label="secrets">
      {config.secrets.map((s) => (
        <li class={s.set ? "set" : s.required ? "missing" : "unset"} title={s.set ? "set" : s.required ? "missing" : "not set"}>
          {s.name}: {s.set ? "set" : s.required ? "missing" : "not set"}
        </li>
      ))}
    </ul>
    <ul class="notes">
      {config.problems.map((p) => (
        <li class="bad">
          <strong>{p.setting}</strong> {p.problem}
        </li>
      ))}
      {config.rotations.map((r) => (
        <li class="info">
          Rotating <strong>{r.name}</strong>: its *_PREVIOUS value is still accepted
          {r.lastUsed ? `; last used ${when(r.lastUsed)} (this isolate)` : "; not seen in use by this isolate"}.
        </li>
      ))}
      {config.warnings.map((w) => (
        <li class="warn">{w}</li>
      ))}
      {config.signatureHint ? (
        <li class="warn">
          Signature hint ({when(config.signatureHint.at)}, this isolate's memory): {config.signatureHint.hint}
        </li>
      ) : null}
    </ul>
    {config.recentRefusals.length > 0 ? (
      <>
        <h3>Refused callbacks seen by this instance</h3>
        <p class="muted">
          This instance's memory only: OneAccess's requests usually reach other instances. The logs hold every refusal
          (wrangler tail).
        </p>
        <table>
          <thead>
            <tr>
              <th>when</th>
              <th>code</th>
              <th>reason</th>
              <th>event</th>
            </tr>
          </thead>
          <tbody>
            {config.recentRefusals.map((r) => (
              <tr>
                <td class="nowrap">{when(r.at)}</td>
                <td>
                  <span class="code bad">{r.code}</span>
                </td>
                <td class="mono">{r.reason ?? ""}</td>
                <td class="mono">{r.eventType ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </>
    ) : null}
  </section>
);

const CountsCard: FC<{ counts: DirectoryCounts }> = ({ counts }) => {
  const items: Array<[string, number, boolean]> = [
    ["organizations", counts.organizations, false],
    ["users", counts.users, false],
    ["disabled users", counts.users_disabled, false],
    ["users without organization", counts.users_without_organization, false],
    ["organization missing", counts.users_organization_missing + counts.organizations_parent_missing, counts.users_organization_missing + counts.organizations_parent_missing > 0],
    ["deleted (kept as tombstones)", counts.organizations_deleted + counts.users_deleted, false],
    ["deliveries (audit log)", counts.deliveries, false],
    ["failed deliveries", counts.deliveries_failed, counts.deliveries_failed > 0],
  ];
  return (
    <section class="card" id="counts">
      <h2>Directory</h2>
      <dl class="counts">
        {items.map(([label, n, bad]) => (
          <div class={bad ? "bad" : ""}>
            <dt>{label}</dt>
            <dd>{n}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
};

const DeliveriesCard: FC<{ deliveries: ApiDelivery[]; failuresOnly: boolean }> = ({ deliveries, failuresOnly }) => (
  <section class="card" id="deliveries">
    <h2>
      Recent deliveries
      <span class="muted">(newest first, last {deliveries.length})</span>
      <span class="right">
        {failuresOnly ? <a href="/admin#deliveries">show all</a> : <a href="/admin?failures=1#deliveries">only failures</a>}
      </span>
    </h2>
    {deliveries.length === 0 ? (
      <p class="muted">{failuresOnly ? "No failed delivery in the audit log." : "No delivery yet."}</p>
    ) : (
      <table>
        <thead>
          <tr>
            <th>received</th>
            <th>event</th>
            <th>result</th>
            <th>message</th>
            <th>entity</th>
            <th>ms</th>
          </tr>
        </thead>
        <tbody>
          {deliveries.map((d) => {
            const failed = d.code !== "200";
            return (
              <tr class={failed ? "failed" : ""} data-code={d.code}>
                <td class="nowrap">{when(d.received_at)}</td>
                <td class="mono">{d.event_type}</td>
                <td>
                  <span class={failed ? "code bad" : "code ok"}>{failed ? `✗ ${d.code}` : d.code}</span>
                </td>
                <td class="message">{d.message}</td>
                <td class="mono">{d.entity_id ?? "—"}</td>
                <td>{d.duration_ms}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    )}
  </section>
);

const ChangeFeedCard: FC<{ changes: ApiChange[] }> = ({ changes }) => (
  <section class="card" id="changes">
    <h2>
      Change feed <span class="muted">(newest first, last {changes.length}; GET /api/v1/events)</span>
    </h2>
    {changes.length === 0 ? (
      <p class="muted">No change among the newest rows of the log.</p>
    ) : (
      <table>
        <thead>
          <tr>
            <th>when</th>
            <th>type</th>
            <th>entity</th>
            <th>version</th>
            <th>id</th>
          </tr>
        </thead>
        <tbody>
          {changes.map((ch) => (
            <tr data-change-id={ch.id}>
              <td class="nowrap">{when(ch.recorded_at)}</td>
              <td class="mono">{ch.type}</td>
              <td class="mono">
                {ch.entity_type} {ch.entity_id}
              </td>
              <td>{ch.version}</td>
              <td class="mono">{ch.id}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </section>
);

const HeldTable: FC<{ messages: HeldMessage[]; dead: boolean }> = ({ messages, dead }) => (
  <table>
    <thead>
      <tr>
        <th>id</th>
        <th>type</th>
        <th>entity</th>
        <th>version</th>
        <th>attempts</th>
        <th>{dead ? "dead since" : "next attempt"}</th>
        <th>last error</th>
        {dead ? <th></th> : null}
      </tr>
    </thead>
    <tbody>
      {messages.map((m) => (
        <tr class={dead ? "failed" : ""} data-webhook-id={m.id}>
          <td class="mono">{m.id}</td>
          <td class="mono">{m.type}</td>
          <td class="mono">
            {m.entityType} {m.entityId}
          </td>
          <td>{m.version}</td>
          <td>{m.attempts}</td>
          <td class="nowrap">{when(dead ? (m.deadAt ?? null) : m.nextAttemptAt)}</td>
          <td class="message">{m.lastError ?? "—"}</td>
          {dead ? (
            <td>
              <form class="row" method="post" action="/admin/webhooks/redeliver">
                <input type="hidden" name="id" value={m.id} />
                <button class="small" type="submit">
                  Redeliver
                </button>
              </form>
            </td>
          ) : null}
        </tr>
      ))}
    </tbody>
  </table>
);

const WebhooksCard: FC<{ view: WebhookView }> = ({ view }) => {
  if (view.state === "off") {
    return (
      <section class="card" id="webhooks">
        <h2>
          Webhooks <span class="pill warn">off</span>
        </h2>
        <p class="muted">Set WEBHOOK_URL and the secret WEBHOOK_SECRET to have every change POSTed as a signed Standard Webhooks message.</p>
      </section>
    );
  }
  if (view.state === "misconfigured") {
    return (
      <section class="card" id="webhooks">
        <h2>
          Webhooks <span class="pill bad">misconfigured</span>
        </h2>
        <p class="error">Nothing is sent until {view.settings.join(", ")} {view.settings.length === 1 ? "is" : "are"} fixed (see Configuration).</p>
      </section>
    );
  }
  if (view.state === "unreachable") {
    return (
      <section class="card" id="webhooks">
        <h2>
          Webhooks <span class="pill bad">state unavailable</span>
        </h2>
        <p class="error">The dispatcher did not answer; reload to try again. Endpoint: {view.target}</p>
      </section>
    );
  }
  const s = view.status;
  return (
    <section class="card" id="webhooks">
      <h2>
        Webhooks
        {s.deadCount > 0 ? (
          <span class="pill bad">
            {s.deadCount} dead {s.deadCount === 1 ? "letter" : "letters"}
          </span>
        ) : null}
        {s.endpointFailing ? <span class="pill bad">endpoint failing</span> : s.retryingCount > 0 ? <span class="pill warn">retrying</span> : <span class="pill ok">delivering</span>}
      </h2>
      <dl class="kv">
        <dt>endpoint</dt>
        <dd>{view.target}</dd>
        <dt>signed with</dt>
        <dd>{view.rotation ? "WEBHOOK_SECRET and WEBHOOK_SECRET_PREVIOUS (rotation)" : "WEBHOOK_SECRET"}</dd>
        <dt>delivered</dt>
        <dd data-delivered={s.delivered}>{s.delivered} (running total)</dd>
        <dt>log position taken</dt>
        <dd>{s.cursor ?? "none yet"}</dd>
        <dt>last run</dt>
        <dd>{s.lastRunAt === null ? "not since the dispatcher started" : when(s.lastRunAt)}</dd>
        <dt>retrying</dt>
        <dd>
          {s.retryingCount}
          {s.waitingCount > 0 ? ` (${s.waitingCount} more waiting behind them)` : ""}
        </dd>
      </dl>
      {s.retrying.length > 0 ? (
        <>
          <h3>Retrying{s.retryingCount > s.retrying.length ? ` (oldest ${s.retrying.length} of ${s.retryingCount})` : ""}</h3>
          <HeldTable messages={s.retrying} dead={false} />
        </>
      ) : null}
      {s.dead.length > 0 ? (
        <>
          <h3>
            Dead letters{s.deadCount > s.dead.length ? ` (newest ${s.dead.length} of ${s.deadCount})` : ""}: given up after 24 hours
          </h3>
          <form class="inline" method="post" action="/admin/webhooks/redeliver-all">
            <button type="submit">Redeliver all {s.deadCount}</button>
          </form>
          <HeldTable messages={s.dead} dead={true} />
        </>
      ) : null}
    </section>
  );
};

const SearchCard: FC<{ search: DashboardProps["search"]; failuresOnly: boolean; orgNames: Map<string, string> }> = ({
  search,
  failuresOnly,
  orgNames,
}) => (
  <section class="card" id="users">
    <h2>Users</h2>
    <form class="inline" method="get" action="/admin#users" role="search">
      <input type="search" name="q" value={search?.q ?? ""} placeholder="username, name or email" maxlength={100} aria-label="search users" />
      {failuresOnly ? <input type="hidden" name="failures" value="1" /> : null}
      <button type="submit">Search</button>
    </form>
    {search === null ? (
      <p class="muted">Search live users by part of their username, name or email.</p>
    ) : search.error ? (
      <p class="error">{search.error}</p>
    ) : search.users.length === 0 ? (
      <p class="muted">No live user matches “{search.q}”.</p>
    ) : (
      <>
        <table id="search-results">
          <thead>
            <tr>
              <th>username</th>
              <th>name</th>
              <th>email</th>
              <th>organization</th>
              <th>status</th>
              <th>id</th>
            </tr>
          </thead>
          <tbody>
            {search.users.map((u) => (
              <tr>
                <td class="mono">{u.username}</td>
                <td>{u.name}</td>
                <td>{u.email ?? "—"}</td>
                <td>
                  {u.organization_id === null ? (
                    <span class="muted">none</span>
                  ) : (
                    (orgNames.get(u.organization_id) ?? <span class="flag">missing {u.organization_id}</span>)
                  )}
                </td>
                <td>{u.disabled ? <span class="pill warn">disabled</span> : <span class="pill ok">active</span>}</td>
                <td class="mono">{u.id}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {search.more ? <p class="muted">More users match: refine the search.</p> : null}
      </>
    )}
  </section>
);

interface TreeNode {
  org: TreeOrganization;
  children: TreeNode[];
  total: number;
}

/** Nests the flat list; an organization whose parent is not live (or not listed) is shown as a root. */
export function buildTree(organizations: TreeOrganization[]): TreeNode[] {
  const nodes = new Map(organizations.map((org) => [org.id, { org, children: [] as TreeNode[], total: 0 }]));
  const roots: TreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.org.parent_id === null ? undefined : nodes.get(node.org.parent_id);
    (parent && parent !== node ? parent.children : roots).push(node);
  }
  // Subtree member totals; `seen` guards against a cycle (the callback's rules prevent one).
  const seen = new Set<TreeNode>();
  const total = (node: TreeNode): number => {
    if (seen.has(node)) return 0;
    seen.add(node);
    node.total = node.org.members + node.children.reduce((n, child) => n + total(child), 0);
    return node.total;
  };
  roots.forEach(total);
  return roots;
}

const TreeBranch: FC<{ nodes: TreeNode[] }> = ({ nodes }) => (
  <ul class="tree">
    {nodes.map((node) => (
      <li data-org-id={node.org.id}>
        <span class="org-name">{node.org.name}</span> <span class="muted mono">{node.org.code}</span>
        <span class="members">
          {node.org.members} {node.org.members === 1 ? "member" : "members"}
          {node.total !== node.org.members ? ` · ${node.total} with sub-organizations` : ""}
        </span>
        {node.org.parent_missing ? <span class="flag">parent {node.org.parent_id} missing</span> : null}
        {node.children.length > 0 ? <TreeBranch nodes={node.children} /> : null}
      </li>
    ))}
  </ul>
);

export const Dashboard: FC<DashboardProps> = (props) => {
  const orgNames = new Map(props.tree.organizations.map((o) => [o.id, o.name]));
  const roots = buildTree(props.tree.organizations);
  return (
    <Document title="Operator page · OneAccess receiver">
      <header class="top">
        <h1>
          OneAccess receiver <small>operator page · {when(props.renderedAt)}</small>
        </h1>
        <form method="post" action="/admin/logout">
          <button class="ghost" type="submit">
            Log out
          </button>
        </form>
      </header>
      <main>
        <div class="grid stack">
          <ConfigCard config={props.config} />
          <CountsCard counts={props.counts} />
        </div>
        <WebhooksCard view={props.webhooks} />
        <ChangeFeedCard changes={props.changes} />
        <DeliveriesCard deliveries={props.deliveries} failuresOnly={props.failuresOnly} />
        <SearchCard search={props.search} failuresOnly={props.failuresOnly} orgNames={orgNames} />
        <section class="card" id="organizations">
          <h2>
            Organizations <span class="muted">({props.tree.organizations.length}{props.tree.truncated ? "+, list cut" : ""})</span>
          </h2>
          {roots.length === 0 ? <p class="muted">No organization yet.</p> : <TreeBranch nodes={roots} />}
        </section>
      </main>
    </Document>
  );
};
