// Issue #10's scripted provisioning, in every profile: through the emulator's management API only (token,
// tenant users, application organizations and accounts), a tree of organizations, 50 accounts, edits,
// moves, disables and deletes under each deletion setting. The emulator sends each change to the Worker as
// OneAccess would; at the end the receiver's directory must equal the emulator's (its list APIs), plus what
// each deletion setting leaves downstream (a disabled user, or the account as it was).
import { beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../../emulator/core/store";
import { PROFILES } from "../simulator/harness";
import { byCode, byUsername, Client, emulatorFor, orgFromOrganization, receiverDirectory, settingsBody, userFromAccount } from "./harness";

const NAMES = ["张伟", "王芳", "Ana Souza", "李娜", "José Álvarez", "刘洋", "Chloé Martin", "陈静", "Øyvind Berg", "O'Brien & Sons"];

describe("scripted provisioning through the emulator, every profile", () => {
  // The Worker's one log line per callback: hundreds here.
  // The Worker's one log line per callback (refusals go to console.warn).
beforeEach(() => {
  vi.spyOn(console, "log").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

  PROFILES.forEach(({ label, name, layout }, i) => {
    it(`${label}: tree, 50 accounts, edits, moves, disables, deletes under each setting`, async () => {
      const tag = `e${i}`;
      const store = new MemoryStore();
      const c = await new Client(emulatorFor(name, layout, { configured: false, store })).login();
      // Saving the callback settings sends CHECK_URL and answers its result.
      const saved = await c.ok("PUT", c.app("/sync-settings"), settingsBody(name, layout));
      expect(saved.check_url).toEqual({ code: "200", message: "success", echoed: true });

      // A tree four deep, two roots.
      const org: Record<string, string> = {};
      const mk = async (code: string, orgName: string, parent?: string) => (org[code] = await c.createOrg(`${tag}-${code}`, orgName, parent && org[parent]));
      await mk("hq", "总部 Headquarters");
      await mk("rd", "研发部 R&D", "hq");
      await mk("sales", "Sales & Marketing", "hq");
      await mk("ops", "Operations", "hq");
      await mk("web", "Web 前端", "rd");
      await mk("api", "API Team", "rd");
      await mk("qa", "QA", "rd");
      await mk("lab", "Lab_1", "web");
      await mk("emea", "São Paulo Office", "sales");
      await mk("apac", "APAC 亚太", "sales");
      await mk("it", "IT-Support", "ops");
      await mk("hr", "HR", "ops");
      await mk("branch", "Branch Office", undefined);
      await mk("branch-a", "Branch A", "branch");
      const leaves = ["lab", "api", "qa", "emea", "apac", "it", "hr", "branch-a", "rd", "hq"];

      // 50 tenant users, each with one application account.
      const account: string[] = [];
      for (let n = 0; n < 50; n++) {
        const userId = await c.createUser(`${tag}.user${n}`, NAMES[n % NAMES.length]);
        const extension: Record<string, unknown> = { employeeNo: `E${1000 + n}`, level: n % 4, remote: n % 2 === 0 };
        if (n % 3 === 0) extension.email = `${tag}.user${n}@example.com`;
        if (n % 4 === 0) Object.assign(extension, { firstName: "Wei", lastName: "Zhang", mobile: `+86 138 0000 ${String(n).padStart(4, "0")}` });
        account.push(
          await c.createAccount({
            user_id: userId,
            ...(n % 7 === 0 ? { account_name: `${tag}-acct${n}` } : {}), // otherwise the user's user_name
            ...(n % 3 === 1 ? { name: `Display ${n}` } : {}), // otherwise the user's name
            org_code: `${tag}-${leaves[n % leaves.length]}`,
            ...(n % 5 === 0 ? { password: `Secr3t-${n}!` } : {}),
            ...(n % 10 === 9 ? { disabled: true } : {}),
            extension,
          }),
        );
      }
      const put = (n: number, body: Record<string, unknown>) => c.ok("PUT", c.app(`/accounts/${account[n]}`), body);

      // Edits: names, extension attributes (set, change, remove), account_name renames, organization renames.
      for (let n = 0; n < 6; n++) await put(n, { name: `Renamed ${n} 改名` });
      for (let n = 6; n < 10; n++) await put(n, { extension: { title: "Lead", employeeNo: null, email: `${tag}.lead${n}@example.com` } });
      for (let n = 10; n < 13; n++) await put(n, { account_name: `${tag}.renamed${n}`, password: "N3w-passw0rd" });
      await c.ok("PUT", c.app(`/organizations/${org.qa}`), { name: "Quality 质量" });
      await c.ok("PUT", c.app(`/organizations/${org.branch}`), { name: "Branch Office (Shenzhen)" });

      // Moves: accounts between organizations and out of any; organizations (with their subtrees) elsewhere.
      for (let n = 13; n < 19; n++) await put(n, { org_code: `${tag}-${leaves[(n + 3) % leaves.length]}` });
      await put(19, { org_code: "" });
      await c.ok("PUT", c.app(`/organizations/${org.qa}`), { parent_id: org.ops });
      await c.ok("PUT", c.app(`/organizations/${org.apac}`), { parent_id: "" }); // to the root
      await c.ok("PUT", c.app(`/organizations/${org.web}`), { parent_id: org["branch-a"], name: "Web Platform" }); // lab moves along

      // Disables and enables.
      for (let n = 20; n < 24; n++) await c.ok("PUT", c.app(`/accounts/${account[n]}/disable`));
      await c.ok("PUT", c.app(`/accounts/${account[9]}/enable`));
      await c.ok("PUT", c.app(`/accounts/${account[19]}/enable`)); // already enabled: nothing to send
      await put(24, { disabled: true, name: "Leaving soon" });

      // Deletes. Accounts to delete first move to hq, so the organizations deleted below are empty downstream
      // too (an account deleted as "disable" or "none" stays downstream, in its organization).
      for (let n = 30; n < 42; n++) await put(n, { org_code: `${tag}-hq` });
      const codeOf = async () => {
        const orgs = await c.list("/organizations", "organizations", 100);
        const map = new Map(orgs.map((o: any) => [o.org_id, o.org_code]));
        return (id: string) => map.get(id) ?? `unknown ${id}`;
      };
      const leftDownstream: { orgs: any[]; users: any[] } = { orgs: [], users: [] };
      const deleteAccounts = async (from: number, to: number, mode: string) => {
        for (let n = from; n < to; n++) {
          const before = await c.ok("GET", c.app(`/accounts/${account[n]}`));
          await c.ok("DELETE", c.app(`/accounts/${account[n]}`));
          if (mode === "disable") leftDownstream.users.push(userFromAccount(before, await codeOf(), { disabled: true }));
          if (mode === "none") leftDownstream.users.push(userFromAccount(before, await codeOf()));
        }
      };
      const deleteOrg = async (code: string, mode: string) => {
        const before = await c.ok("GET", c.app(`/organizations/${org[code]}`));
        const codes = await codeOf();
        await c.ok("DELETE", c.app(`/organizations/${org[code]}`));
        if (mode === "disable") leftDownstream.orgs.push(orgFromOrganization(before, codes, { disabled: true }));
        if (mode === "none") leftDownstream.orgs.push(orgFromOrganization(before, codes));
      };
      const emptyOut = async (code: string) => {
        for (const a of await c.list("/accounts", "accounts", 50)) {
          if (a.org_id === org[code]) await c.ok("PUT", c.app(`/accounts/${a.id}`), { org_code: `${tag}-rd` });
        }
      };

      await c.general("delete", "delete");
      await deleteAccounts(30, 34, "delete");
      await emptyOut("hr");
      await deleteOrg("hr", "delete");

      await c.general("disable", "disable");
      await deleteAccounts(34, 38, "disable");
      await emptyOut("it");
      await deleteOrg("it", "disable");

      await c.general("none", "none");
      await deleteAccounts(38, 42, "none");
      await emptyOut("emea");
      await deleteOrg("emea", "none");

      // Every event was delivered and answered 200.
      const records = await c.records();
      expect(records.filter((r) => r.status !== "success")).toEqual([]);
      expect(records.every((r) => r.code === "200" && r.attempts === 1)).toBe(true);
      const count = (type: string) => records.filter((r) => r.event_type === type).length;
      expect(count("CREATE_ORGANIZATION")).toBe(14);
      expect(count("CREATE_USER")).toBe(50);
      expect(count("DELETE_USER")).toBe(4); // only under "delete"
      expect(count("DELETE_ORGANIZATION")).toBe(1);

      // The receiver holds exactly the emulator's directory, plus what "disable" and "none" leave downstream.
      const codes = await codeOf();
      const accounts = await c.list("/accounts", "accounts", 20);
      const orgs = await c.list("/organizations", "organizations", 5);
      expect(accounts).toHaveLength(50 - 12);
      expect(orgs).toHaveLength(14 - 3);
      const expected = {
        organizations: byCode([...orgs.map((o) => orgFromOrganization(o, codes)), ...leftDownstream.orgs]),
        users: byUsername([...accounts.map((a) => userFromAccount(a, codes)), ...leftDownstream.users]),
      };
      const actual = await receiverDirectory(tag);
      expect(actual.organizations).toHaveLength(11 + 2);
      expect(actual.users).toHaveLength(38 + 8);
      expect(byCode(actual.organizations)).toEqual(expected.organizations);
      expect(byUsername(actual.users)).toEqual(expected.users);
      // Spot checks of the mapping itself.
      const user = (username: string) => actual.users.find((u) => u.username === username);
      expect(user(`${tag}-acct0`)).toMatchObject({ name: "Renamed 0 改名", firstName: "Wei", mobile: "+86 138 0000 0000", orgCode: `${tag}-lab` });
      expect(user(`${tag}.renamed10`)).toBeDefined();
      expect(user(`${tag}.user10`)).toBeUndefined();
      expect(user(`${tag}.user6`)?.extensions).toEqual({ level: 2, remote: true, title: "Lead" });
      expect(user(`${tag}.user19`)?.orgCode).toBeNull();
      expect(actual.organizations.find((o) => o.code === `${tag}-lab`)?.parentCode).toBe(`${tag}-web`);
      expect(actual.organizations.find((o) => o.code === `${tag}-web`)?.parentCode).toBe(`${tag}-branch-a`);
      expect(actual.organizations.find((o) => o.code === `${tag}-it`)?.extensions).toEqual({ disabled: true });

      // Passwords went out with their events and are not kept once delivered.
      const stored = JSON.stringify(await store.load());
      expect(stored).not.toContain("Secr3t");
      expect(stored).not.toContain("N3w-passw0rd");
    });
  });
});
