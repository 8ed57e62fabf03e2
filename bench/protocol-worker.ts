// The protocol loop as a Worker, so the bench measures the receiver's pure protocol work in the runtime it
// runs in: scripts/bench.mjs bundles this file, runs it in workerd (through Miniflare, no bindings, no
// storage) and reads the CPU time workerd used while one request ran the loop. (workerd's clocks stand
// still while code runs, so the time is measured from outside.)
import { protocolLoop, type ProtocolInput } from "./core";

export default {
  async fetch(request: Request): Promise<Response> {
    const { input, iterations } = (await request.json()) as { input: ProtocolInput; iterations: number };
    const done = await protocolLoop(input, iterations);
    return Response.json({ done });
  },
};
