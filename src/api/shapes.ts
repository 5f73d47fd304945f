// The object shapes of node:http's request and response, settled before the first request.
//
// V8 sizes a constructor's objects by watching its first seven (in-object slack tracking): the
// size it settles on is what those objects, and the shapes they went on to, used. A full garbage
// collection in that window that finds none of them alive leaves nothing to measure: a daemon
// that collects after each refresh (src/daemon/gc.ts) between its first few, sparse requests
// ended with ServerResponse objects of no in-object fields, and from then on every response
// outgrew its property array and turned into a dictionary as it was built (~1 per request in a
// shared host's daemon; its GetSSHKeys throughput 0.85x the in-guest daemon's, bench/README.md).
// Eight pairs made at once, before anything can collect them, settle the sizes for good.
import { IncomingMessage, ServerResponse } from '../builtins.js';

let settled = false;

/** Construct enough requests and responses, alive together, to end V8's slack tracking; once. */
export function settleHttpShapes(): void {
  if (settled) return;
  settled = true;
  const alive: unknown[] = [];
  for (let i = 0; i < 8; i++) {
    const req = new IncomingMessage(null as never);
    alive.push(req, new ServerResponse(req));
  }
}
