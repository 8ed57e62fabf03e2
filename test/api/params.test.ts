// Bad parameters answer 400 naming the parameter, before any SQL runs.
import { describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/read/cursor";
import { api } from "./support";

const LISTS = ["/users", "/organizations", "/organizations/org_x/children", "/organizations/org_x/members", "/deliveries"];

function expect400(res: Awaited<ReturnType<typeof api>>, parameter: string, message: string | RegExp) {
  expect(res.status, res.text).toBe(400);
  expect(res.body).toEqual({ error: "bad_request", parameter, message: expect.stringMatching(message) });
}

describe("limit", () => {
  it("must be an integer from 1 to 200 on every list", async () => {
    for (const path of LISTS) {
      for (const bad of ["0", "201", "1000", "-1", "1.5", "abc", "", "1e2", " 5", "5 ", "0x10", "99999"]) {
        expect400(await api(`${path}?limit=${encodeURIComponent(bad)}`), "limit", /^limit must be an integer from 1 to 200$/);
      }
      for (const good of ["1", "200", "050"]) {
        expect((await api(`${path}?limit=${good}`)).status).not.toBe(400);
      }
    }
  });
});

describe("cursor", () => {
  it("must be a cursor this list made", async () => {
    const forged = [
      "",
      "garbage",
      "!!!!",
      btoa("not json"),
      btoa(JSON.stringify({ l: "users" })),
      btoa(JSON.stringify({ l: "users", k: 5 })),
      btoa(JSON.stringify({ l: "users", k: "" })),
      btoa(JSON.stringify({ l: "deliveries", k: "abc" })),
      btoa(JSON.stringify({ l: "deliveries", k: -1 })),
      btoa(JSON.stringify([1, 2])),
      "x".repeat(401),
    ];
    for (const path of LISTS) {
      for (const bad of forged) expect400(await api(`${path}?cursor=${encodeURIComponent(bad)}`), "cursor", /^cursor is invalid$/);
    }
    expect400(await api(`/organizations?cursor=${encodeCursor("users", "usr_a")}`), "cursor", /^cursor is invalid$/);
    expect400(await api(`/users?cursor=${encodeCursor("organizations", "org_a")}`), "cursor", /^cursor is invalid$/);
    expect400(await api(`/users?cursor=${encodeCursor("deliveries", 5)}`), "cursor", /^cursor is invalid$/);
    expect((await api(`/users?cursor=${encodeCursor("users", "usr_a")}`)).status).toBe(200);
    expect((await api(`/deliveries?cursor=${encodeCursor("deliveries", 5)}`)).status).toBe(200);
  });
});

describe("other parameters", () => {
  it("include_deleted is true, false, 1 or 0", async () => {
    for (const path of ["/users", "/organizations", "/users/usr_x", "/organizations/org_x"]) {
      for (const bad of ["yes", "TRUE", "", "2", "on"]) {
        expect400(await api(`${path}?include_deleted=${bad}`), "include_deleted", /^include_deleted must be true or false$/);
      }
    }
  });

  it("code is a 3-digit reply code", async () => {
    for (const bad of ["abc", "20", "2000", "", "600", "099", "2%"]) {
      expect400(await api(`/deliveries?code=${encodeURIComponent(bad)}`), "code", /^code must be a 3-digit reply code/);
    }
  });

  it("q is at most 48 bytes (like-limit.test.ts); organization is not empty and at most 200", async () => {
    expect400(await api(`/users?q=${"a".repeat(49)}`), "q", /^q must be at most 48 bytes of UTF-8 \(after escaping \\ % _\)$/);
    expect((await api(`/users?q=${"a".repeat(48)}`)).status).toBe(200);
    expect400(await api("/users?organization="), "organization", /^organization must not be empty$/);
    expect400(await api(`/users?organization=${"o".repeat(201)}`), "organization", /^organization must be at most 200 characters$/);
    expect400(await api(`/users/${"u".repeat(201)}`), "id", /^id must be at most 200 characters$/);
  });

  it("an unknown parameter is refused, naming it and the ones the route takes", async () => {
    expect400(await api("/users?org=org_x"), "org", /^unknown parameter "org"; this route takes limit, cursor, include_deleted, organization, q$/);
    expect400(await api("/deliveries?outcome=404"), "outcome", /unknown parameter "outcome"/);
    expect400(await api("/users/usr_x?limit=5"), "limit", /^unknown parameter "limit"; this route takes include_deleted$/);
    expect400(await api(`/users?${"z".repeat(60)}=1`), "z".repeat(60), /^unknown parameter "z{40}…"/);
  });

  it("a parameter given twice is refused", async () => {
    expect400(await api("/users?limit=5&limit=6"), "limit", /^limit must be given at most once$/);
    expect400(await api("/users?q=a&q=b"), "q", /^q must be given at most once$/);
  });
});
