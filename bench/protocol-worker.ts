// The protocol loop as a Worker, so the bench measures the receiver's pure protocol work in the runtime it
// runs in: the bench's Node host bundles this file and runs it in workerd (through Miniflare, no bindings,
// no storage), and the bench reads the CPU time workerd used while one request ran the loop. (workerd's
// clocks stand still while code runs, so the time is measured from outside.) `{ "pbkdf2": n }` instead runs
// the receiver's own password hash n times: what PASSWORD_POLICY=pbkdf2 adds to a user event.
import { hashPassword } from "../src/directory/passwords";
import { protocolLoop, type ProtocolInput } from "./core/protocol";

type Job = { input: ProtocolInput; iterations: number } | { pbkdf2: number };

export default {
  async fetch(request: Request): Promise<Response> {
    const job = (await request.json()) as Job;
    if ("pbkdf2" in job) {
      let done = 0;
      for (let i = 0; i < job.pbkdf2; i++) if ((await hashPassword("Bench-Passw0rd!")).startsWith("pbkdf2-sha256$")) done++;
      return Response.json({ done });
    }
    const done = await protocolLoop(job.input, job.iterations);
    return Response.json({ done });
  },
};
