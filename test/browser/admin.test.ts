// The operator page in a real browser (Debian's headless Chromium, driven by playwright-core) against a real
// `wrangler dev`: data arrives as OneAccess would send it (signed, encrypted callbacks from the independent
// sender), one of them failing; then log in, see the failure highlighted, search a user, take a screenshot
// (test-artifacts/admin-page.png), log out. Runs in Node: `vitest run -c vitest.browser.config.ts`.
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRequest, openReply, type SenderProfile } from "../sender/oneaccess-sender";
import {
  artifactPath,
  CHROMIUM,
  devVars,
  makeTempDir,
  removeDir,
  requireChromium,
  startWranglerDev,
  type WranglerDev,
} from "./wrangler-dev.mjs";

const vars = devVars();
// wrangler.toml's profile (sha1 + aes-gcm) with the development secrets of .dev.vars.example.
const sender: SenderProfile = {
  signature: "sha1",
  encryption: "aes-gcm",
  layout: "iv16-b64-prefix",
  bearer: vars.ONEACCESS_BEARER_TOKEN!,
  signingKey: vars.ONEACCESS_SIGNING_KEY!,
  encryptionKey: vars.ONEACCESS_ENCRYPTION_KEY!,
};

let dev: WranglerDev;
let context: BrowserContext;
let page: Page;
let profileDir: string;
let clock = Date.now();

async function send(eventType: string, payload: unknown): Promise<{ code: string; message: string; id?: string }> {
  const { request } = await buildRequest(`${dev.url}/callback`, sender, eventType, payload, { timestamp: ++clock });
  const reply = await openReply(sender, await fetch(request));
  const id = reply.plaintext.startsWith("{") ? (JSON.parse(reply.plaintext) as { id: string }).id : undefined;
  return { code: reply.code, message: reply.message, ...(id ? { id } : {}) };
}

async function create(eventType: string, payload: Record<string, unknown>): Promise<string> {
  const r = await send(eventType, payload);
  if (r.code !== "200" || !r.id) throw new Error(`${eventType} answered ${r.code} ${r.message}\n${dev.output()}`);
  return r.id;
}

async function seed() {
  expect((await send("CHECK_URL", "browser-test-check")).code).toBe("200");
  const acme = await create("CREATE_ORGANIZATION", { code: "acme", name: "Acme Corporation" });
  const eng = await create("CREATE_ORGANIZATION", { code: "eng", name: "Engineering", parentId: acme });
  const platform = await create("CREATE_ORGANIZATION", { code: "eng-platform", name: "Platform", parentId: eng });
  const mobile = await create("CREATE_ORGANIZATION", { code: "eng-mobile", name: "Mobile", parentId: eng });
  const sales = await create("CREATE_ORGANIZATION", { code: "sales", name: "Sales & Marketing", parentId: acme });
  const emea = await create("CREATE_ORGANIZATION", { code: "sales-emea", name: "EMEA Sales", parentId: sales });
  const finance = await create("CREATE_ORGANIZATION", { code: "finance", name: "Finance", parentId: acme });
  const people: Array<[string, string, string, string, boolean?]> = [
    ["alice.nguyen", "Alice Nguyen", eng, "alice.nguyen@acme.example"],
    ["bob.martin", "Bob Martin", platform, "bob.martin@acme.example"],
    ["chen.wei", "Chen Wei", platform, "chen.wei@acme.example"],
    ["dana.kim", "Dana Kim", mobile, "dana.kim@acme.example"],
    ["erik.larsen", "Erik Larsen", sales, "erik.larsen@acme.example"],
    ["fatima.zahra", "Fatima Zahra", emea, "fatima.zahra@acme.example"],
    ["george.ohara", "George O'Hara", finance, "george.ohara@acme.example"],
    ["hana.sato", "Hana Sato", finance, "hana.sato@acme.example", true],
  ];
  for (const [username, name, organizationId, email, disabled] of people) {
    await create("CREATE_USER", { username, name, organizationId, email, disabled: disabled ?? false, password: "" });
  }
  // The failures OneAccess would see in its sync record: an update of a user this directory does not hold,
  // and a create without a username.
  expect(await send("UPDATE_USER", { id: "usr_unknown12345", username: "ghost.user", disabled: false })).toMatchObject({
    code: "404",
    message: "user not found",
  });
  expect(await send("CREATE_USER", { name: "Nameless", organizationId: eng })).toMatchObject({ code: "400" });
  const ivan = await create("CREATE_USER", { username: "ivan.petrov", name: "Ivan Petrov", organizationId: mobile });
  await create("UPDATE_USER", { id: ivan, username: "ivan.petrov", email: "ivan.petrov@acme.example", disabled: false });
}

beforeAll(async () => {
  requireChromium();
  dev = await startWranglerDev();
  await seed();
  profileDir = makeTempDir("oneaccess-chromium-profile-");
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM.executablePath,
    args: CHROMIUM.args,
    headless: true,
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
});

afterAll(async () => {
  await context?.close();
  if (profileDir) removeDir(profileDir);
  await dev?.stop();
});

describe("operator page in Chromium", () => {
  it("sends a visitor without a session to the login form, and refuses a wrong token", async () => {
    await page.goto(`${dev.url}/admin`);
    expect(new URL(page.url()).pathname).toBe("/admin/login");
    await page.fill('input[name="token"]', "not-the-token");
    await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
    expect(await page.textContent(".error")).toContain("That is not the directory API token.");
    expect(await context.cookies(`${dev.url}/admin`)).toEqual([]);
  });

  it("logs in with DIRECTORY_API_TOKEN and keeps a Secure, HttpOnly, SameSite=Strict cookie on /admin", async () => {
    await page.fill('input[name="token"]', vars.DIRECTORY_API_TOKEN!);
    await Promise.all([page.waitForURL(`${dev.url}/admin`), page.click('button[type="submit"]')]);
    const cookies = await context.cookies(`${dev.url}/admin`);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: "oneaccess_admin", path: "/admin", httpOnly: true, secure: true, sameSite: "Strict" });
    expect(cookies[0]!.value).not.toContain(vars.DIRECTORY_API_TOKEN!);
    expect(await page.textContent("h1")).toContain("OneAccess receiver");
  });

  it("shows the failed delivery highlighted, with its reason", async () => {
    const failed = page.locator('#deliveries tr.failed[data-code="404"]');
    await expect.poll(() => failed.count()).toBe(1);
    expect(await failed.textContent()).toContain("UPDATE_USER");
    expect(await failed.locator("td.message").textContent()).toBe("user not found");
    // A string, evaluated in the page: this project type-checks without DOM types.
    const background = (selector: string) =>
      page.evaluate<string>(`getComputedStyle(document.querySelector(${JSON.stringify(selector)})).backgroundColor`);
    expect(await background('#deliveries tr.failed[data-code="404"] td')).toBe("rgb(253, 236, 234)");
    expect(await background('#deliveries tr[data-code="200"] td')).not.toBe("rgb(253, 236, 234)");
    expect(await page.locator('#deliveries tr.failed[data-code="400"]').count()).toBe(1);
    expect(await page.textContent("#configuration")).toContain("ready");
    expect(await page.textContent("#organizations")).toContain("Sales & Marketing");
  });

  it("finds a user with the search and takes a screenshot", async () => {
    await page.fill('input[name="q"]', "chen");
    await Promise.all([page.waitForURL(/[?&]q=chen/), page.press('input[name="q"]', "Enter")]);
    const results = page.locator("#search-results tbody tr");
    expect(await results.count()).toBe(1);
    expect(await results.first().textContent()).toContain("chen.wei");
    expect(await results.first().textContent()).toContain("Platform");
    await page.screenshot({ path: artifactPath("admin-page.png"), fullPage: true });
  });

  it("logs out: the page asks for the token again", async () => {
    await Promise.all([page.waitForURL(`${dev.url}/admin/login`), page.click("header form button")]);
    expect(await context.cookies(`${dev.url}/admin`)).toEqual([]);
    await page.goto(`${dev.url}/admin`);
    expect(new URL(page.url()).pathname).toBe("/admin/login");
  });
});
