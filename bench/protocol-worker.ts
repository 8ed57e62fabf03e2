// The protocol loop as a Worker, so the bench measures the receiver's pure protocol work in the runtime it
// runs in: the bench's Node host bundles this file and runs it in workerd (through Miniflare, no bindings,
// no storage), and the bench reads the CPU time workerd used while one request ran the loop. (workerd's
// clocks stand still while code runs, so the time is measured from outside.)
import { protocolLoop, type ProtocolInput } from "./core/protocol";

export default {
  async fetch(request: Request): Promise<Response> {
    const { input, iterations } = (await request.json()) as { input: ProtocolInput; iterations: number };
    const done = await protocolLoop(input, iterations);
    return Response.json({ done });
  },
};
