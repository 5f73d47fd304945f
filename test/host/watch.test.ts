// A guest's data followed live (src/host/watch.ts): a change in a guest's files, or in the host's
// tmcc cache of it, refreshes that guest only; a guest's symlinks never make the host watch (or
// read) a host directory; a flooding guest starves nobody; watches close when a guest goes.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { silentLogger } from '../../src/log.js';
import { startHostDaemon, type HostDaemon } from '../../src/host/daemon.js';
import { guestTree, startGuest, waitFor } from './helpers.js';

function hostRoot(config: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), config);
  return root;
}

const DOV_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBYmlXywJOOQ4btR4iEdl9KIOqT7sFgGH3W8+aXrhQJ';

/** Replace a file the way Emulab does (a new file renamed over the old). */
function replace(file: string, text: string): void {
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
}

/** Count the refreshes of each guest (the instance's method wrapped); `order`, if given, gets the
 *  guest's name at the start of each. */
function countRefreshes(daemon: HostDaemon, order?: string[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const [name, g] of daemon.guests) {
    const orig = g.refresh.bind(g);
    n.set(name, 0);
    g.refresh = async (trigger: string) => {
      n.set(name, (n.get(name) ?? 0) + 1);
      order?.push(name);
      return orig(trigger);
    };
  }
  return n;
}

const fds = (): number => fs.readdirSync('/proc/self/fd').length;

test.serial('a change in a guest\'s files or the host\'s tmcc cache of it refreshes that guest only; a guest\'s link to a host directory is not followed', async (t) => {
  const a = await startGuest(guestTree('pg-vnode'));
  const b = await startGuest(guestTree('emulab-pnode'));
  // The hostile guest: its /etc and its tmcc directory are absolute links to host directories.
  const evilTree = guestTree('pg-vnode');
  const hostEtc = fs.mkdtempSync(path.join(os.tmpdir(), 'host-etc-'));
  const hostTmccDir = fs.mkdtempSync(path.join(os.tmpdir(), 'host-tmcc-'));
  fs.rmSync(path.join(evilTree, 'etc'), { recursive: true });
  fs.symlinkSync(hostEtc, path.join(evilTree, 'etc'));
  fs.rmSync(path.join(evilTree, 'var/emulab/boot/tmcc.pcvm7-2'), { recursive: true });
  fs.symlinkSync(hostTmccDir, path.join(evilTree, 'var/emulab/boot/tmcc.pcvm7-2'));
  const evil = await startGuest(evilTree);
  const root = hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "pcvm7-2"\npid = ${a.pid}\n\n[[guest]]\nname = "pnode"\npid = ${b.pid}\n\n[[guest]]\nname = "evil"\npid = ${evil.pid}\n`);
  const paths = nodePaths(root);
  fs.mkdirSync(paths.bootDir, { recursive: true });
  const daemon = await startHostDaemon({ paths, configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await Promise.all([a.kill(), b.kill(), evil.kill()]);
  });
  const refreshes = countRefreshes(daemon);
  t.true(daemon.watches.count('pcvm7-2') >= 4, daemon.watches.watched('pcvm7-2').join(' '));
  // The guest's accounts gain a user: that guest's sshd key files follow, no other guest is refreshed.
  const acc = path.join(a.dir, 'var/emulab/boot/tmcc.pcvm7-2/accounts');
  replace(acc, `${fs.readFileSync(acc, 'utf8')}ADDUSER LOGIN=eve PSWD=* UID=21109 GID=7100 ROOT=1 NAME="eve" HOMEDIR=/users/eve GLIST="" SERIAL=1 EMAIL="e@x" SHELL=bash\nPUBKEY LOGIN=eve KEY="${DOV_KEY} eve@home"\n`);
  await waitFor('eve\'s key file in the guest', () => fs.existsSync(path.join(a.dir, 'etc/sliceid/authorized_keys/eve')));
  t.true(fs.readFileSync(path.join(a.dir, 'etc/sliceid/authorized_keys/eve'), 'utf8').includes(DOV_KEY));
  // A changed host name in the other guest: its record follows.
  fs.writeFileSync(path.join(b.dir, 'etc/hostname'), 'renamed.example.org\n');
  await waitFor('the other guest refreshed', () => refreshes.get('pnode')! >= 1);
  t.is(refreshes.get('pcvm7-2'), 1);
  // The host's tmcc cache of a guest (made after the start: the boot directory's watch sees it).
  fs.mkdirSync(paths.tmccDir('pnode'), { recursive: true });
  const pnodeAcc = fs.readFileSync(path.join(b.dir, 'var/emulab/boot/tmcc/accounts'), 'utf8');
  await waitFor('the host tmcc directory watched', () => daemon.watches.watched('pnode').includes(`host:${paths.tmccDir('pnode')}`));
  replace(path.join(paths.tmccDir('pnode'), 'accounts'), pnodeAcc.replace(/^PUBKEY LOGIN=ben .*\n/m, ''));
  await waitFor('ben gone from the other guest (the host\'s copy wins)', () => !fs.existsSync(path.join(b.dir, 'etc/sliceid/authorized_keys/ben')));
  t.true(fs.existsSync(path.join(b.dir, 'etc/sliceid/authorized_keys/ada')));
  // The hostile guest's links lead to host directories: changes there are no events of it.
  const evilBefore = refreshes.get('evil')!;
  fs.writeFileSync(path.join(hostEtc, 'passwd'), 'x:x:0:0::/:/bin/sh\n');
  fs.writeFileSync(path.join(hostTmccDir, 'accounts'), 'ADDGROUP NAME=x GID=1\n');
  // ...whereas the same names inside the guest (the links resolved in its own root) are.
  const pBefore = refreshes.get('pcvm7-2')!;
  fs.writeFileSync(path.join(a.dir, 'etc/hostname'), 'again.example.org\n');
  await waitFor('a later change of another guest seen', () => refreshes.get('pcvm7-2')! > pBefore);
  fs.writeFileSync(path.join(a.dir, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
  await waitFor('and one more', () => refreshes.get('pcvm7-2')! > pBefore + 1);
  t.is(refreshes.get('evil'), evilBefore, 'the host directories the hostile guest links to are not watched for it');
  t.false(daemon.watches.watched('evil').some((k) => k.includes(hostEtc) || k.includes(hostTmccDir)));
  // Its links taken in its own root: /etc is the guest's <hostEtc> (on its own /tmp, made by the
  // identity write), and a change there is its event.
  fs.writeFileSync(`/proc/${evil.pid}/root${hostEtc}/hostname`, 'evil.example.org\n');
  await waitFor('the hostile guest refreshed by its own file', () => refreshes.get('evil')! > evilBefore).catch((err: Error) => {
    throw new Error(`${err.message}: ${daemon.watches.watched('evil').join(' ')} ${JSON.stringify(daemon.guests.get('evil')!.status())}`);
  });
});

test.serial('a guest flooding its files starves no other guest and gets one refresh at a time', async (t) => {
  const a = await startGuest(guestTree('pg-vnode'));
  const b = await startGuest(guestTree('emulab-pnode'));
  const root = hostRoot(`[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "flood"\npid = ${a.pid}\n\n[[guest]]\nname = "pnode"\npid = ${b.pid}\n`);
  const daemon = await startHostDaemon({ paths: nodePaths(root), configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await Promise.all([a.kill(), b.kill()]);
  });
  const order: string[] = [];
  const refreshes = countRefreshes(daemon, order);
  let flooding = true;
  let writes = 0;
  const boot = path.join(a.dir, 'var/emulab/boot');
  const flood = (async () => {
    while (flooding) {
      fs.writeFileSync(path.join(boot, `junk${writes % 50}`), String(writes));
      writes++;
      if (writes % 200 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  const started = Date.now();
  await waitFor('the flood under way', () => refreshes.get('flood')! >= 1);
  fs.writeFileSync(path.join(b.dir, 'etc/hostname'), 'during-the-flood.example.org\n');
  const changedAt = order.length;
  const t0 = Date.now();
  await waitFor('the quiet guest refreshed during the flood', () => refreshes.get('pnode')! >= 1);
  const latency = Date.now() - t0;
  const floodFirst = order.indexOf('pnode', changedAt) - changedAt;
  flooding = false;
  await flood;
  const seconds = (Date.now() - started) / 1000;
  t.log(`${writes} writes in ${seconds.toFixed(1)} s: ${refreshes.get('flood')} refreshes of the flooding guest; the other guest refreshed ${latency} ms after its change, after ${floodFirst} more of the flooding guest`);
  // Fairness by order, not by the clock (the flood runs in this process and slows everything): the
  // flooding guest has at most one refresh queued, so at most that one and one more started while
  // the quiet guest's 100 ms debounce ran can come between its change and its refresh.
  t.true(floodFirst >= 0 && floodFirst <= 2, order.join(' '));
  // At most one refresh per second (maxWait) and one more.
  t.true(refreshes.get('flood')! <= Math.ceil(seconds) + 2, `${refreshes.get('flood')} refreshes in ${seconds} s`);
});

test.serial('a guest going away closes its watches, the daemon stopping closes all, no fd left', async (t) => {
  const name = `sliceid-w${process.pid}`;
  const root = hostRoot(`[host]\nnetns_dir = "/var/run/netns"\n`);
  const paths = nodePaths(root);
  const fdsBefore = fds();
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
  await waitFor('the guest served and watched', () => daemon.guests.get(name)?.status().slice === 'labpg3_sl1' && daemon.watches.count(name) >= 4, 20_000);
  await g.kill();
  execFileSync('ip', ['netns', 'del', name]);
  await waitFor('the guest gone', () => daemon.guests.get(name)?.status().present === false);
  t.is(daemon.watches.count(name), 0);
  await daemon.stop('test');
  t.is(daemon.watches.count(), 0);
  t.true(fds() <= fdsBefore, `${fds()} fds after, ${fdsBefore} before`);
});
