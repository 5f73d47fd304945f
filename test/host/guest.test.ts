import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { nodePaths } from '../../src/paths.js';
import { defaultConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { Guest } from '../../src/host/guest.js';
import { guestTree, startGuest, pyInGuest, XMLRPC_KEYS, RAW_HTTP10 } from './helpers.js';

test.serial('a guest in its own namespaces gets its files, and its API inside its network namespace', async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
  const hostRoot = path.join(base, 'host');
  fs.mkdirSync(hostRoot);
  const dir = guestTree('pg-vnode');
  const g = await startGuest(dir);
  t.teardown(() => g.kill());
  const guest = new Guest(
    { name: 'pcvm7-2', pid: g.pid, from: 'config' },
    { hostPaths: nodePaths(hostRoot), config: defaultConfig(), logger: silentLogger, port: 812, listen: ['127.0.0.1', '::1'], socket: '/tmp/nodemanager.api' },
  );
  t.teardown(async () => {
    await guest.close();
    guest.dispose();
  });
  await guest.refresh('start');
  await guest.listen();
  const st = guest.status();
  t.is(st.slice, 'labpg3_sl1', JSON.stringify(st));
  t.is(fs.readFileSync(path.join(dir, 'etc/slicename'), 'utf8').trim(), 'labpg3_sl1');
  t.true(fs.readFileSync(path.join(dir, 'etc/slice.gid'), 'utf8').includes('BEGIN CERTIFICATE'));
  t.true(fs.existsSync(path.join(dir, 'etc/node.gid')));
  t.deepEqual(fs.readdirSync(path.join(dir, 'etc/sliceid/authorized_keys')).sort(), ['cy', 'dov', 'gina']);
  t.false(fs.existsSync(path.join(hostRoot, 'etc/slicename')), 'the host writes no identity of its own');
  t.true(st.endpoints.includes('127.0.0.1:812'), st.endpoints.join(' '));
  // Python's xmlrpc.client inside the guest's network namespace.
  const py = await pyInGuest(g.pid, XMLRPC_KEYS, ['http://127.0.0.1:812/']);
  t.is(py.status, 0, py.stderr);
  const got = JSON.parse(py.stdout) as { keys: Record<string, string>; record: { name: string } };
  t.deepEqual(Object.keys(got.keys), ['labpg3_sl1']);
  t.true(got.keys['labpg3_sl1']!.includes('gina@utah'));
  t.is(got.record.name, 'labpg3_sl1');
  const raw = await pyInGuest(g.pid, RAW_HTTP10);
  t.is(raw.status, 0, raw.stderr);
  t.regex(raw.stdout, /^HTTP\/1\.[01] 200/);
  t.regex(raw.stdout, /labpg3_sl1/);
  // The host's own loopback has nothing on 812 from this guest; the socket is in the guest's /tmp
  // (its own tmpfs, in its mount namespace), not in the tree the host sees.
  t.false(fs.existsSync(path.join(dir, 'tmp/nodemanager.api')));
  const viaUnix = await new Promise<string>((resolve, reject) => {
    const body = "<?xml version='1.0'?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>";
    const c = net.connect(`/proc/${g.pid}/root/tmp/nodemanager.api`);
    let out = '';
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.write(`POST / HTTP/1.0\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  t.regex(viaUnix, /labpg3_sl1/);
});
