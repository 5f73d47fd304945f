import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { silentLogger } from '../../src/log.js';
import { startHostDaemon } from '../../src/host/daemon.js';
import { hostStatus } from '../../src/host/status.js';
import { guestTree, startGuest, pyInGuest, waitFor, leftovers, XMLRPC_KEYS, RAW_HTTP10 } from './helpers.js';

function hostRoot(config: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), config);
  // The host's own netns directory (a test's, not the machine's /var/run/netns).
  fs.mkdirSync(path.join(root, 'netns'));
  return root;
}

async function keysInside(pid: number): Promise<Record<string, string>> {
  const py = await pyInGuest(pid, XMLRPC_KEYS, ['http://127.0.0.1:812/']);
  if (py.status !== 0) throw new Error(py.stderr);
  return (JSON.parse(py.stdout) as { keys: Record<string, string> }).keys;
}

test.serial('two guests and a hostile one: each gets its own slice, the hostile one wedges nothing and reaches nothing of the host', async (t) => {
  const a = await startGuest(guestTree('pg-vnode'));
  const b = await startGuest(guestTree('emulab-pnode'));
  // The hostile guest: /etc is an absolute link to a host directory, its accounts link to a host
  // file, a FIFO and a huge file among its boot files, 127.0.0.1:812 squatted, /tmp/nodemanager.api a directory.
  const evilTree = guestTree('pg-vnode');
  const sentinel = fs.mkdtempSync(path.join(os.tmpdir(), 'host-etc-'));
  fs.writeFileSync(path.join(sentinel, 'secret'), 'host secret\n');
  fs.writeFileSync(path.join(sentinel, 'slicename'), 'host-own');
  fs.rmSync(path.join(evilTree, 'etc'), { recursive: true });
  fs.symlinkSync(sentinel, path.join(evilTree, 'etc'));
  const acc = path.join(evilTree, 'var/emulab/boot/tmcc.pcvm7-2/accounts');
  fs.rmSync(acc);
  fs.symlinkSync(path.join(sentinel, 'secret'), acc);
  fs.rmSync(path.join(evilTree, 'var/emulab/boot/swapper'));
  execFileSync('mkfifo', [path.join(evilTree, 'var/emulab/boot/swapper')]);
  fs.writeFileSync(path.join(evilTree, 'var/emulab/boot/nodeuuid'), Buffer.alloc(8 << 20, 0x41));
  const evil = await startGuest(evilTree);
  fs.mkdirSync(`/proc/${evil.pid}/root/tmp/nodemanager.api`);
  const squat = spawn('nsenter', [`--net=/proc/${evil.pid}/ns/net`, '--', 'python3', '-c', 'import socket,time\ns=socket.socket();s.bind(("127.0.0.1",812));s.listen();print("up",flush=True);time.sleep(600)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((r) => squat.stdout.once('data', r));
  const root = hostRoot(`[host]\nnetns_dir = "${'/nonexistent-netns'}"\n\n[[guest]]\nname = "pcvm7-2"\npid = ${a.pid}\n\n[[guest]]\nname = "pnode"\npid = ${b.pid}\n\n[[guest]]\nname = "evil"\npid = ${evil.pid}\n`);
  const paths = nodePaths(root);
  const daemon = await startHostDaemon({ paths, configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    squat.kill('SIGKILL');
    await Promise.all([a.kill(), b.kill(), evil.kill()]);
  });
  t.deepEqual([...daemon.guests.keys()].sort(), ['evil', 'pcvm7-2', 'pnode']);
  t.deepEqual(Object.keys(await keysInside(a.pid)), ['labpg3_sl1']);
  const bKeys = await keysInside(b.pid);
  t.deepEqual(Object.keys(bKeys), ['wlab_radio'], 'pinned: the other guest sees its own slice only');
  t.false(JSON.stringify(bKeys).includes('gina@utah'));
  const raw = await pyInGuest(b.pid, RAW_HTTP10);
  t.regex(raw.stdout, /^HTTP\/1\.[01] 200[\s\S]*wlab_radio/);
  // Served from memory: no guest keeps its SQLite connection open between refreshes.
  t.deepEqual([...daemon.guests.values()].filter((g) => g.cache.isOpen).map((g) => g.spec.name), []);
  // Nothing of the host was read or written through the hostile guest's links.
  t.is(fs.readFileSync(path.join(sentinel, 'slicename'), 'utf8'), 'host-own');
  t.deepEqual(fs.readdirSync(sentinel).sort(), ['secret', 'slicename']);
  t.false(JSON.stringify(daemon.guests.get('evil')!.status()).includes('host secret'));
  // What it wrote landed inside the hostile guest, at its link target taken in the guest.
  // (/tmp is the guest's own tmpfs, in its mount namespace)
  t.is(fs.readFileSync(`/proc/${evil.pid}/root${sentinel}/slicename`, 'utf8').trim(), 'labpg3_sl1', JSON.stringify(daemon.guests.get('evil')!.status()));
  // status names each problem; the other guests have none of them.
  const st = await hostStatus(paths, { json: true });
  const report = JSON.parse(st.text) as { guests: Array<{ name: string; problems: string[]; reachable: string; slice: string }> };
  const evilReport = report.guests.find((g) => g.name === 'evil')!;
  const problems = evilReport.problems.join('\n');
  t.regex(problems, /127\.0\.0\.1:812: held by another process/);
  t.regex(problems, /nodemanager\.api/);
  t.regex(problems, /swapper.*FIFO/);
  t.regex(problems, /nodeuuid.*bytes/);
  t.is(report.guests.find((g) => g.name === 'pcvm7-2')!.reachable, 'ok');
  t.is(report.guests.find((g) => g.name === 'pnode')!.reachable, 'ok');
  t.deepEqual(report.guests.find((g) => g.name === 'pnode')!.problems, []);
  const text = await hostStatus(paths, { guest: 'evil', json: false });
  t.regex(text.text, /guest evil[\s\S]*problems:[\s\S]*EADDRINUSE/);
});

test.serial('a guest appearing through ip netns add with a process in it is served; one going away is closed, its data kept', async (t) => {
  const name = `sliceid-t${process.pid}`;
  const root = hostRoot(`[host]\nnetns_dir = "/var/run/netns"\n`);
  const paths = nodePaths(root);
  // The host's tmcc cache of the guest wins over the guest's own copy.
  fs.mkdirSync(paths.tmccDir(name), { recursive: true });
  const daemon = await startHostDaemon({ paths, configFile: undefined, logger: silentLogger });
  let g: Awaited<ReturnType<typeof startGuest>> | undefined;
  t.teardown(async () => {
    await daemon.stop('test');
    await g?.kill();
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // gone already
    }
  });
  execFileSync('ip', ['netns', 'add', name]);
  g = await startGuest(guestTree('pg-vnode'), { netns: name });
  await waitFor('the guest to be served', () => daemon.guests.get(name)?.status().slice === 'labpg3_sl1' && daemon.guests.get(name)!.status().endpoints.length > 0, 20_000);
  const keys = await keysInside(g.pid);
  t.deepEqual(Object.keys(keys), ['labpg3_sl1']);
  t.is(fs.readFileSync(path.join(g.dir, 'etc/slicename'), 'utf8').trim(), 'labpg3_sl1');
  await daemon.reload();
  const files = daemon.guests.get(name)!.status().files;
  t.is(new Set(files).size, files.length, `each file named once after more than one refresh: ${files.join(' ')}`);
  await g.kill();
  execFileSync('ip', ['netns', 'del', name]);
  await waitFor('the guest to be gone', () => daemon.guests.get(name)?.status().present === false);
  t.deepEqual(daemon.guests.get(name)!.status().endpoints, []);
  t.is(daemon.guests.get(name)!.view.slicename(), 'labpg3_sl1', 'its cached data is kept');
  t.true(fs.existsSync(path.join(paths.under(`/var/lib/sliceid/guests/${name}/root`), 'var/lib/sliceid/cache.db')));
});

test.serial('a guest whose process enters its root after joining the namespace: nothing read in the host\'s root, served once in its own with no other event', async (t) => {
  const name = `sliceid-r${process.pid}`;
  const root = hostRoot(`[host]\nnetns_dir = "/var/run/netns"\n`);
  const paths = nodePaths(root);
  const daemon = await startHostDaemon({ paths, configFile: undefined, logger: silentLogger });
  const started = (async () => {
    execFileSync('ip', ['netns', 'add', name]);
    return startGuest(guestTree('pg-vnode'), { netns: name, rootAfterS: 1 });
  })();
  t.teardown(async () => {
    await daemon.stop('test');
    await (await started.catch(() => undefined))?.kill();
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // gone already
    }
  });
  // The process is in the namespace, still in the host's root: the guest is known, no process taken.
  await waitFor('the namespace to be followed', () => daemon.guests.get(name)?.status().present === true, 5000);
  const ns = fs.statSync(`/var/run/netns/${name}`);
  const inNs = (pid: string): boolean => {
    try {
      return fs.statSync(`/proc/${pid}/ns/net`).ino === ns.ino;
    } catch {
      return false;
    }
  };
  await waitFor('a process in the namespace', () => fs.readdirSync('/proc').some((p) => /^\d+$/.test(p) && inNs(p)), 5000);
  await daemon.sync('test: the namespace has a process');
  const early = daemon.guests.get(name)!.status();
  t.is(early.pid, undefined, 'a process in the host\'s root is no guest\'s');
  t.is(early.slice, undefined);
  const g = await started;
  await waitFor('the guest to be served in its own root', () => daemon.guests.get(name)?.status().slice === 'labpg3_sl1', 10_000);
  t.is(daemon.guests.get(name)!.status().pid, g.pid);
  t.deepEqual(Object.keys(await keysInside(g.pid)), ['labpg3_sl1']);
  t.is(fs.readFileSync(path.join(g.dir, 'etc/slicename'), 'utf8').trim(), 'labpg3_sl1');
});

test.serial('[host] all_slices = true: every guest endpoint gives NodeManager\'s answer, every guest\'s slice', async (t) => {
  const a = await startGuest(guestTree('pg-vnode'));
  const b = await startGuest(guestTree('emulab-pnode'));
  const root = hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\nall_slices = true\n\n[[guest]]\nname = "pcvm7-2"\npid = ${a.pid}\n\n[[guest]]\nname = "pnode"\npid = ${b.pid}\n`);
  const daemon = await startHostDaemon({ paths: nodePaths(root), configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await Promise.all([a.kill(), b.kill()]);
  });
  for (const pid of [a.pid, b.pid]) t.deepEqual(Object.keys(await keysInside(pid)).sort(), ['labpg3_sl1', 'wlab_radio']);
});

test.serial('ten guests: all served, and the daemon stops within 3 s with a client connected to each', async (t) => {
  const gs = await Promise.all(Array.from({ length: 10 }, () => startGuest(guestTree('pg-vnode'))));
  const entries = gs.map((g, i) => `[[guest]]\nname = "g${i}"\npid = ${g.pid}\n`).join('\n');
  const root = hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\n\n${entries}`);
  const t0 = Date.now();
  const daemon = await startHostDaemon({ paths: nodePaths(root), configFile: undefined, logger: silentLogger });
  const startMs = Date.now() - t0;
  t.teardown(async () => {
    await daemon.stop('test');
    await Promise.all(gs.map((g) => g.kill()));
  });
  const eps = [...daemon.guests.values()].map((g) => g.status().endpoints);
  t.true(eps.every((e) => e.includes("127.0.0.1:812") && e.includes("/tmp/nodemanager.api")), JSON.stringify(eps));
  // An idle keep-alive client held open in every guest.
  const idle = gs.map((g) =>
    spawn('nsenter', [`--net=/proc/${g.pid}/ns/net`, '--', 'python3', '-c', 'import socket,time\ns=socket.create_connection(("127.0.0.1",812));print("c",flush=True);time.sleep(60)'], { stdio: ['ignore', 'pipe', 'ignore'] }),
  );
  await Promise.all(idle.map((c) => new Promise((r) => c.stdout.once('data', r))));
  const t1 = Date.now();
  await daemon.stop('test');
  const stopMs = Date.now() - t1;
  for (const c of idle) c.kill('SIGKILL');
  t.log(`10 guests: started in ${startMs} ms, stopped in ${stopMs} ms`);
  t.true(stopMs < 3000, `${stopMs} ms`);
});

test.serial('a systemd-nspawn container (a real container manager) is served as a guest', async (t) => {
  const dir = guestTree('pg-vnode');
  fs.mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'usr/lib/os-release'), 'ID=guest\n');
  // No system bus on the test machine: no machined registration, no scope unit of its own.
  // The container's command names this run (a container of another run is never taken for it).
  const marker = String(600_000 + (process.pid % 100_000));
  // Its messages go to a file, not a pipe: a child of nspawn that outlives it holds no handle of
  // this worker. It leads a process group of its own, killed whole with the container's init (PID
  // 1 of its own pid namespace, which outlives a killed nspawn).
  const errFile = path.join(path.dirname(dir), 'nspawn.err');
  const errFd = fs.openSync(errFile, 'w');
  const nspawn = spawn('systemd-nspawn', ['-q', '--register=no', '--keep-unit', '--private-network', '-D', dir, '/bin/busybox', 'sleep', marker], { stdio: ['ignore', 'ignore', errFd], detached: true });
  fs.closeSync(errFd);
  let leader: number | undefined;
  t.teardown(async () => {
    if (leader) process.kill(leader, 'SIGKILL');
    if (nspawn.exitCode === null && nspawn.signalCode === null) {
      const gone = new Promise((r) => nspawn.once('exit', r));
      process.kill(-nspawn.pid!, 'SIGKILL');
      await gone;
    }
  });
  try {
    await waitFor('the container to start', () => {
      for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        try {
          if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === `/bin/busybox\u0000sleep\u0000${marker}\u0000`) leader = Number(p);
        } catch {
          // gone
        }
      }
      return leader !== undefined;
    });
  } catch {
    t.log(`systemd-nspawn could not start a container here; skipped: ${fs.readFileSync(errFile, 'utf8').trim()}`);
    t.pass();
    return;
  }
  const root = hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "pcvm7-2"\npid = ${leader}\n`);
  const daemon = await startHostDaemon({ paths: nodePaths(root), configFile: undefined, logger: silentLogger });
  t.teardown(() => daemon.stop('test'));
  t.deepEqual(Object.keys(await keysInside(leader!)), ['labpg3_sl1']);
  t.is(fs.readFileSync(`/proc/${leader}/root/etc/slicename`, 'utf8').trim(), 'labpg3_sl1');
});

// Every test stops its daemon and its guests: nothing of them may keep the worker alive (a hang at
// exit is named here, and the processes left are killed).
test.after.always('no process or listener is left behind', async (t) => {
  t.deepEqual(await leftovers(), []);
});
