import { describe, expect, it } from "vitest";
import { buildRequest, openReply } from "./sender/oneaccess-sender";
import { callWorker, CALLBACK_URL, envFor, profile } from "./helpers/worker";

describe("smoke", () => {
  it("answers CHECK_URL for sha1 + gcm", async () => {
    const p = profile("sha1+gcm", "iv12");
    const { request } = await buildRequest(CALLBACK_URL, p, "CHECK_URL", "hello&world");
    const res = await callWorker(request, envFor(p));
    const reply = await openReply(p, res);
    expect(reply.code).toBe("200");
    expect(reply.plaintext).toBe("hello&world");
    expect(reply.layout).toBe("iv12");
  });
});
