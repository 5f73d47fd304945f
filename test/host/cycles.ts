// 1000 guest start/stop cycles (npm run test:host-cycles [-- COUNT]): a guest appears (served:
// refresh, listeners handed over from its network namespace, the Unix socket in its /tmp, its
// files watched) and goes away (listeners and watches closed) again and again; the daemon's open
// fds and heap must come back to where they were.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { defaultConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { Guest } from '../../src/host/guest.js';
import { GuestWatches } from '../../src/host/watch.js';
import { guestTree, startGuest, pyInGuest, XMLRPC_KEYS } from './helpers.js';

const cycles = Number(process.argv[2] ?? 1000);
const fds = (): number => fs.readdirSync('/proc/self/fd').length;
const heapMiB = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
};

const hostRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cycles-'));
const g = await startGuest(guestTree('pg-vnode'));
const opts = { hostPaths: nodePaths(hostRoot), config: defaultConfig(), logger: silentLogger, port: 812, listen: ['127.0.0.1', '::1'], socket: '/tmp/nodemanager.api' };
// The guest's files followed live as the host daemon follows them (src/host/watch.ts).
const watches = new GuestWatches({ hostPaths: opts.hostPaths, logger: silentLogger, changed: async () => undefined });
const once = async (): Promise<void> => {
  const guest = new Guest({ name: 'pcvm7-2', pid: g.pid, from: 'config' }, opts);
  await guest.refresh('start');
  await guest.listen();
  watches.follow([guest]);
  if (guest.status().endpoints.length < 2) throw new Error(`not served: ${JSON.stringify(guest.status())}`);
  if (watches.count() < 4) throw new Error(`not watched: ${watches.watched('pcvm7-2').join(' ')}`);
  watches.follow([]);
  await guest.close();
  guest.dispose();
};
// Warm-up: the first cycles load modules and fill caches.
for (let i = 0; i < 20; i++) await once();
const before = { fds: fds(), heap: heapMiB() };
const started = Date.now();
for (let i = 0; i < cycles; i++) await once();
const after = { fds: fds(), heap: heapMiB() };
// Still served after all that.
const guest = new Guest({ name: 'pcvm7-2', pid: g.pid, from: 'config' }, opts);
await guest.refresh('start');
await guest.listen();
const py = await pyInGuest(g.pid, XMLRPC_KEYS, ['http://127.0.0.1:812/']);
await guest.close();
guest.dispose();
await g.kill();
const ok = after.fds <= before.fds && after.heap - before.heap < 4 && py.status === 0 && py.stdout.includes('labpg3_sl1');
console.log(JSON.stringify({ cycles, seconds: (Date.now() - started) / 1000, before, after, servedAfter: py.status === 0 }));
process.exit(ok ? 0 : 1);
