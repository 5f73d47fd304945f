// A guest's process that exits is noticed (src/host/alive.ts): through its cgroup's
// cgroup.events (inotify) when it has a cgroup of its own, else at the daemon's next event.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { silentLogger } from '../../src/log.js';
import { startHostDaemon } from '../../src/host/daemon.js';
import { cgroupEvents, processStart } from '../../src/host/alive.js';
import { guestTree, startGuest, waitFor } from './helpers.js';

function hostRoot(config: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), config);
  return root;
}

function cgroup2(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4];
  }
  return undefined;
}

test('processStart: a live process has one, a gone one none', (t) => {
  t.truthy(processStart(process.pid));
  t.is(processStart(2 ** 22 + 17), undefined);
});

test.serial('a guest in a cgroup of its own: its exit is noticed by the cgroup event, listeners closed, data kept', async (t) => {
  const mount = cgroup2();
  if (!mount) {
    t.log('no cgroup v2 hierarchy here; skipped');
    t.pass();
    return;
  }
  const g = await startGuest(guestTree('pg-vnode'));
  const cg = path.join(mount, `sliceid-t${process.pid}`);
  try {
    fs.mkdirSync(cg);
    fs.writeFileSync(path.join(cg, 'cgroup.procs'), String(g.pid));
  } catch (err) {
    await g.kill();
    t.log(`cannot make a cgroup here (${(err as Error).message}); skipped`);
    t.pass();
    return;
  }
  t.is(cgroupEvents(g.pid), path.join(cg, 'cgroup.events'));
  const daemon = await startHostDaemon({ paths: nodePaths(hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "c1"\npid = ${g.pid}\n`)), configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await g.kill();
    fs.rmdirSync(cg);
  });
  t.true(daemon.guests.get('c1')!.status().endpoints.length > 0);
  const t0 = Date.now();
  await g.kill();
  await waitFor('the exit noticed', () => daemon.guests.get('c1')!.status().present === false);
  t.log(`noticed ${Date.now() - t0} ms after the kill`);
  t.deepEqual(daemon.guests.get('c1')!.status().endpoints, []);
  t.is(daemon.guests.get('c1')!.view.slicename(), 'labpg3_sl1');
  t.is(daemon.watches.count('c1'), 0);
});

test.serial('a guest sharing its cgroup: its exit is noticed at the next event of any guest; a namespace guest whose process exits keeps its namespace', async (t) => {
  const a = await startGuest(guestTree('pg-vnode'));
  const b = await startGuest(guestTree('emulab-pnode'));
  const name = `sliceid-a${process.pid}`;
  execFileSync('ip', ['netns', 'add', name]);
  const n = await startGuest(guestTree('pg-vnode'), { netns: name });
  const daemon = await startHostDaemon({ paths: nodePaths(hostRoot(`[host]\nnetns_dir = "/var/run/netns"\n\n[[guest]]\nname = "a"\npid = ${a.pid}\n\n[[guest]]\nname = "b"\npid = ${b.pid}\n`)), configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await Promise.all([a.kill(), b.kill(), n.kill()]);
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  });
  await waitFor('the namespace guest served with its process', () => daemon.guests.get(name)?.status().pid === n.pid, 20_000);
  await a.kill();
  await n.kill();
  // Another guest's file changes: the daemon looks at every guest's process then.
  fs.writeFileSync(path.join(b.dir, 'etc/hostname'), 'poke.example.org\n');
  await waitFor('a\'s exit noticed', () => daemon.guests.get('a')!.status().present === false);
  t.deepEqual(daemon.guests.get('a')!.status().endpoints, []);
  await waitFor('the namespace guest without its process', () => daemon.guests.get(name)!.status().pid === undefined);
  t.true(daemon.guests.get(name)!.status().present, 'its namespace is still there: still served');
  t.true(daemon.guests.get('b')!.status().present);
});
