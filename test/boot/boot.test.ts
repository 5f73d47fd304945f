// The packages under a real systemd: a Debian bookworm root (debootstrap, cached outside the
// checkout) booted with systemd-nspawn, once with the .deb installed by dpkg as an image build
// does (no systemd running), once with the RPM's payload unpacked (rpm2cpio | cpio) and its %post
// run in the root. A fixture node tree is put in place (/var/emulab/boot, host name), and then:
// the unit is enabled and active after boot, the identity files are written with their modes,
// GetSSHKeys answers Python's xmlrpc.client on 127.0.0.1:812 and /tmp/nodemanager.api, the state
// directory is 0700, `systemctl reload` refreshes, `systemctl stop` stops, the SysV initscript
// runs under the container's /bin/sh, and after a reboot the same GIDs are served (nothing is
// issued again). The .deb is also upgraded, removed and purged with systemd running.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { goodTrees, projectDir, tempDir, type FixtureTree } from '../helpers/fixtures.js';
import { GETSSHKEYS_PY } from '../helpers/py-client.js';
import { execFileSync } from 'node:child_process';
import { Container, must, run, until } from './container.js';
import { guestTree } from '../host/helpers.js';

const started = Date.now();
const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { version: string };
const fixture: FixtureTree = goodTrees().find((t) => t.label === 'own/emulab-pnode')!;
const hostname = fs.readFileSync(path.join(fixture.source, 'etc/hostname'), 'utf8').trim();
const slice = fixture.expected.slicename;

let base: string;
let deb: string;
let rpm: string;
let rpmPost: string;

test.before(async () => {
  await must('sh', [
    'packaging/ensure-tools.sh',
    'systemd-nspawn=systemd-container',
    'debootstrap=debootstrap',
    'dpkg-deb=dpkg',
    'rpm2cpio=rpm',
    'cpio=cpio',
    'ssh-keygen=openssh-client',
  ], { cwd: projectDir });
  const t0 = Date.now();
  base = (await must('sh', ['test/boot/debian-root.sh'], { cwd: projectDir, timeoutMs: 15 * 60_000 })).trim().split('\n').pop()!;
  const t1 = Date.now();
  // SLICEID_BOOT_PREBUILT=1: boot the packages already in dist/ (a developer's rerun); else build them.
  const prebuilt = process.env['SLICEID_BOOT_PREBUILT'] === '1';
  deb = prebuilt
    ? path.join(projectDir, `dist/sliceid_${pkg.version}-1_amd64.deb`)
    : path.join(projectDir, (await must('npm', ['run', 'deb', '--silent'], { cwd: projectDir, timeoutMs: 15 * 60_000 })).trim().split('\n').pop()!);
  const t2 = Date.now();
  rpm = prebuilt
    ? path.join(projectDir, `dist/sliceid-${pkg.version}-1.x86_64.rpm`)
    : path.join(projectDir, (await must('sh', ['packaging/build-rpm.sh'], { cwd: projectDir, env: { ...process.env, SLICEID_SKIP_BUILD: '1' }, timeoutMs: 15 * 60_000 })).trim().split('\n').pop()!);
  rpmPost = await must('rpm', ['-qp', '--qf', '%{POSTIN}', rpm]);
  console.log(`boot test setup: Debian root ${((t1 - t0) / 1000).toFixed(0)} s, npm run deb ${((t2 - t1) / 1000).toFixed(0)} s, npm run rpm ${((Date.now() - t2) / 1000).toFixed(0)} s`);
});

test.after.always(() => {
  console.log(`boot test: ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
});

test.serial('the .deb: Debian layout, conffiles, modes, maintainer scripts, lintian', async (t) => {
  t.is(path.basename(deb), `sliceid_${pkg.version}-1_amd64.deb`);
  t.log(`${path.basename(deb)}: ${(fs.statSync(deb).size / 1048576).toFixed(1)} MiB`);
  const field = async (f: string) => (await must('dpkg-deb', ['-f', deb, f])).trim();
  t.is(await field('Architecture'), 'amd64');
  t.regex(await field('Depends'), /^libc6 \(>= 2\.28\), libgcc-s1, libstdc\+\+6 \(>= [\d.]+\)$/);
  t.regex(await field('Pre-Depends'), /^init-system-helpers \(>= [\d.~]+\)$/);
  const listing = new Map<string, string>();
  for (const line of (await must('dpkg-deb', ['-c', deb])).split('\n').filter(Boolean)) {
    const [perm, owner, , , , ...rest] = line.split(/\s+/);
    listing.set(rest.join(' ').replace(/^\.\//, '/').replace(/\/$/, ''), `${perm} ${owner}`);
  }
  const expect: Array<[string, string]> = [
    ['/usr/bin/sliceid', '-rwxr-xr-x root/root'],
    ['/usr/lib/sliceid/bin/sliceid.js', '-rw-r--r-- root/root'],
    ['/usr/lib/sliceid/runtime/bin/node', '-rwxr-xr-x root/root'],
    ['/usr/lib/sliceid/node_modules/better-sqlite3/build/Release/better_sqlite3.node', '-rw-r--r-- root/root'],
    ['/etc/sliceid/sliceid.toml', '-rw-r--r-- root/root'],
    ['/etc/default/sliceid', '-rw-r--r-- root/root'],
    ['/etc/init.d/sliceid', '-rwxr-xr-x root/root'],
    ['/etc/logrotate.d/sliceid', '-rw-r--r-- root/root'],
    ['/lib/systemd/system/sliceid.service', '-rw-r--r-- root/root'],
    ['/lib/systemd/system/sliceid-hooks.service', '-rw-r--r-- root/root'],
    ['/lib/systemd/system/sliceid-hooks@.service', '-rw-r--r-- root/root'],
    ['/usr/share/man/man8/sliceid.8.gz', '-rw-r--r-- root/root'],
    ['/usr/share/doc/sliceid/copyright', '-rw-r--r-- root/root'],
    ['/usr/share/doc/sliceid/changelog.Debian.gz', '-rw-r--r-- root/root'],
    ['/var/lib/sliceid', 'drwx------ root/root'],
  ];
  for (const [file, perm] of expect) t.is(listing.get(file), perm, file);
  t.false([...listing.keys()].some((f) => f.startsWith('/etc/sysconfig') || f.startsWith('/etc/rc.d')), 'no RPM-only paths');
  t.false([...listing.keys()].some((f) => f.endsWith('.ts') || /\/(ava|typescript|tsx)\//.test(f)), 'no dev files');
  const dir = tempDir('sliceid-debctl-');
  await must('dpkg-deb', ['-e', deb, dir]);
  t.deepEqual(fs.readFileSync(path.join(dir, 'conffiles'), 'utf8').trim().split('\n'), [
    '/etc/default/sliceid',
    '/etc/init.d/sliceid',
    '/etc/logrotate.d/sliceid',
    '/etc/sliceid/sliceid.toml',
  ]);
  // The unit and initscript read /etc/default/sliceid on Debian.
  const unit = (await must('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./lib/systemd/system/sliceid.service', 'sh', deb]));
  t.regex(unit, /^EnvironmentFile=-\/etc\/default\/sliceid$/m);
  const postinst = fs.readFileSync(path.join(dir, 'postinst'), 'utf8');
  t.regex(postinst, /deb-systemd-helper enable 'sliceid\.service'/);
  t.regex(postinst, /deb-systemd-invoke \$_sliceid_action 'sliceid\.service'/);
  t.regex(fs.readFileSync(path.join(dir, 'postrm'), 'utf8'), /deb-systemd-helper purge 'sliceid\.service'/);
  // The shared host's unit: shipped, tracked for purge, never enabled by the package.
  t.is(listing.get('/lib/systemd/system/sliceid-host.service'), '-rw-r--r-- root/root');
  const hostUnit = await must('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./lib/systemd/system/sliceid-host.service', 'sh', deb]);
  t.regex(hostUnit, /^EnvironmentFile=-\/etc\/default\/sliceid$/m);
  t.regex(hostUnit, /^ExecStart=\/usr\/bin\/sliceid run --host \$SLICEID_HOST_OPTIONS$/m);
  t.regex(hostUnit, /^Conflicts=sliceid\.service$/m);
  t.regex(postinst, /if deb-systemd-helper debian-installed 'sliceid-host\.service'; then\n\s*deb-systemd-helper unmask 'sliceid-host\.service' [^\n]*\n\s*if deb-systemd-helper --quiet was-enabled 'sliceid-host\.service'/);
  t.regex(postinst, /deb-systemd-helper update-state 'sliceid-host\.service'/);
  t.regex(fs.readFileSync(path.join(dir, 'postrm'), 'utf8'), /deb-systemd-helper purge 'sliceid\.service' 'sliceid-host\.service'/);
  t.regex(fs.readFileSync(path.join(dir, 'prerm'), 'utf8'), /deb-systemd-invoke stop 'sliceid\.service' 'sliceid-host\.service'/);
  for (const s of ['postinst', 'prerm', 'postrm']) {
    t.is((await must('sh', ['-c', 'sh -n "$1" && echo ok', 'sh', path.join(dir, s)])).trim(), 'ok', `sh -n ${s}`);
  }
  // lintian: nothing but the overrides, each of which is explained (packaging/deb/lintian-overrides).
  await must('sh', ['packaging/ensure-tools.sh', 'lintian=lintian'], { cwd: projectDir });
  const lint = await run('lintian', ['--tag-display-limit', '0', '-I', '-E', '--pedantic', deb], { timeoutMs: 15 * 60_000 });
  const tags = lint.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l));
  t.deepEqual(tags, [], lint.stdout + lint.stderr);
  const overrides = fs.readFileSync(path.join(projectDir, 'packaging/deb/lintian-overrides'), 'utf8').split('\n');
  // Each override (or group of overrides) comes right after its explanation.
  overrides.forEach((line, i) => {
    if (line && !line.startsWith('#')) t.truthy(overrides[i - 1], `override "${line}" follows its explanation`);
  });
});

/** Put the fixture node tree into the container root: the testbed's boot files and the host name. */
function placeFixture(root: string): void {
  fs.cpSync(path.join(fixture.source, 'var'), path.join(root, 'var'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/hostname'), `${hostname}\n`);
  placeHooks(root);
}

/**
 * Two slice hooks, as an image maintainer puts them in /etc/sliceid/slice.d: one installs a small
 * package the test builds (dpkg, the container's installer) and writes under /usr/local; one runs
 * several seconds (the daemon is killed meanwhile).
 */
function placeHooks(root: string): void {
  const pkgDir = tempDir('sliceid-hello-');
  fs.mkdirSync(path.join(pkgDir, 'DEBIAN'));
  fs.mkdirSync(path.join(pkgDir, 'usr/share/sliceid-hello'), { recursive: true });
  fs.writeFileSync(path.join(pkgDir, 'usr/share/sliceid-hello/hello'), 'hello from a slice hook\n');
  fs.writeFileSync(path.join(pkgDir, 'DEBIAN/control'), 'Package: sliceid-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: sliceid tests <dev@sliceid.invalid>\nDescription: installed by a slice hook in the boot test\n');
  execFileSync('dpkg-deb', ['--root-owner-group', '-b', pkgDir, path.join(root, 'root/sliceid-hello.deb')], { stdio: 'ignore' });
  const dir = path.join(root, 'etc/sliceid/slice.d');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const hook = (name: string, body: string): void => {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\nset -e\n${body}\n`, { mode: 0o755 });
  };
  hook('10-install', 'dpkg -i /root/sliceid-hello.deb\nmkdir -p /usr/local/bin\nprintf "#!/bin/sh\\necho hello %s\\n" "$SLICEID_SLICENAME" > /usr/local/bin/sliceid-hello\nchmod 755 /usr/local/bin/sliceid-hello\necho installed');
  hook('20-long', 'echo start >> /root/long.count\nsleep 6\necho done >> /root/long.count');
}

/**
 * The hooks ran in their own unit, outside the daemon's sandbox: the package is installed and
 * /usr/local written; the long hook survives kill -9 of the daemon's main process, finishes, and
 * runs exactly once; the journal has plain lines under each unit.
 */
async function slicehooks(t: import('ava').ExecutionContext, c: Container, pid: number): Promise<number> {
  const count = (): string[] => {
    try {
      return fs.readFileSync(c.inside('/root/long.count'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  // At boot: both hooks ran once in their unit (the boot's end waits for the oneshot's job).
  await until(async () => (await c.exec(['systemctl', 'is-active', 'sliceid-hooks.service'])).stdout.trim() !== 'activating', 60_000, 'the boot-time hooks');
  t.deepEqual(count(), ['start', 'done'], 'the long hook ran once at boot');
  // The long hook changed: `sliceid hooks run` starts the unit again, and the daemon is killed
  // (kill -9 of its main process) while the hook runs.
  fs.appendFileSync(c.inside('/etc/sliceid/slice.d/20-long'), '# v2\n');
  await c.mustExec(['sliceid', 'hooks', 'run']);
  await until(() => count().length > 2, 60_000, 'the changed long hook to start');
  const killedAt = Date.now();
  await c.mustExec(['kill', '-9', String(pid)]);
  t.deepEqual(count(), ['start', 'done', 'start'], 'killed while the long hook runs');
  await until(() => count().length === 4, 60_000, 'the long hook to finish');
  const finishedAt = Date.now();
  // systemd restarts the daemon (Restart=on-failure, RestartSec=5): a new pid serves.
  const pid2 = await until(async () => {
    const p = await mainPid(c);
    return p && p !== pid && (await c.exec(['sliceid', 'wait', '--timeout', '1'])).code === 0 ? p : 0;
  }, 60_000, 'the restarted daemon');
  const restartMs = Date.now() - killedAt;
  t.true(pid2 > 0);
  await until(async () => (await c.exec(['systemctl', 'is-active', 'sliceid-hooks.service'])).stdout.trim() !== 'activating', 60_000, 'the hooks unit to finish');
  const records = JSON.parse(await c.mustExec(['sliceid', 'hooks', '--json'])) as { slices: Record<string, { hooks: Record<string, { outcome: string; durationMs: number }> }> };
  const runs = records.slices[fixture.expected.slice.urn]!.hooks;
  t.like(runs['10-install'], { outcome: 'ok' });
  t.like(runs['20-long'], { outcome: 'ok' });
  t.deepEqual(count(), ['start', 'done', 'start', 'done'], 'the changed long hook ran exactly once, the kill -9 notwithstanding');
  t.is((await c.mustExec(['dpkg-query', '-W', '-f', '${Status}', 'sliceid-hello'])).trim(), 'install ok installed', 'the hook installed a package');
  t.is((await c.mustExec(['/usr/local/bin/sliceid-hello'])).trim(), `hello ${slice}`, 'the hook wrote under /usr/local');
  // The hooks' journal: under their own unit, each output line with the hook's name, plain text.
  const hooksLog = await c.mustExec(['journalctl', '-u', 'sliceid-hooks.service', '--no-pager', '-o', 'cat']);
  t.regex(hooksLog, /^hook output hook=10-install stream=stdout line=installed$/m, hooksLog);
  const daemonLog = await c.mustExec(['journalctl', '-u', 'sliceid.service', '--no-pager', '-o', 'cat']);
  t.regex(daemonLog, /^ready port=812 /m, 'plain lines in the journal, not JSON');
  t.notRegex(daemonLog, /^\{"level"/m);
  t.regex(daemonLog, /slice hooks: starting their runner/);
  t.notRegex(daemonLog, /could not start their unit/);
  const warn = await c.mustExec(['journalctl', '-u', 'sliceid.service', '--no-pager', '-o', 'cat', '-p', 'info']);
  t.notRegex(warn, /^hook start/m, 'hooks log under their own unit only');
  t.log(`hooks: 10-install ${runs['10-install']!.durationMs} ms, 20-long ${runs['20-long']!.durationMs} ms (finished ${((finishedAt - killedAt) / 1000).toFixed(1)} s after kill -9); daemon back ${(restartMs / 1000).toFixed(1)} s after kill -9 (RestartSec=5)`);
  return pid2;
}

async function getSshKeys(c: Container): Promise<{ tcp: Record<string, string>; unix: Record<string, string> }> {
  return JSON.parse(await c.mustExec(['python3', '-c', GETSSHKEYS_PY, '812', '/tmp/nodemanager.api'])) as { tcp: Record<string, string>; unix: Record<string, string> };
}

/** The daemon serves: its pidfile (written once the API listens) exists and names a live process. */
async function ready(c: Container): Promise<number> {
  return until(() => {
    try {
      const pid = Number(fs.readFileSync(c.inside('/run/sliceid.pid'), 'utf8').trim());
      return pid > 0 && fs.existsSync(`/proc/${c.pid}/root/proc/${pid}`) ? pid : 0;
    } catch {
      return 0;
    }
  }, 60_000, 'the sliceid pidfile');
}

async function mainPid(c: Container): Promise<number> {
  return Number((await c.mustExec(['systemctl', 'show', '-P', 'MainPID', 'sliceid.service'])).trim());
}

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
}

const sha = (p: string): string => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

/** Every key of the fixture's users (GetSSHKeys may filter key types: a subset, with every ssh-rsa key). */
const fixtureKeys = Object.values(fixture.expected.users).flat();

interface Flavour {
  name: string;
  initscript: string;
  install(root: string): Promise<void>;
}

const flavours: Flavour[] = [
  {
    name: '.deb',
    initscript: '/etc/init.d/sliceid',
    async install(root) {
      // As an image build does: dpkg in a chroot of the image, no systemd running.
      fs.copyFileSync(deb, path.join(root, 'root/sliceid.deb'));
      await must('chroot', [root, 'dpkg', '-i', '/root/sliceid.deb'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' } });
      fs.rmSync(path.join(root, 'root/sliceid.deb'));
    },
  },
  {
    name: 'RPM payload',
    initscript: '/etc/rc.d/init.d/sliceid',
    async install(root) {
      await must('sh', ['-c', 'rpm2cpio "$1" | (cd "$2" && cpio -idm --quiet)', 'sh', rpm, root]);
      fs.chmodSync(path.join(root, 'var/lib/sliceid'), 0o700);
      // The package's own %post, in the image (as rpm runs it on install: $1 = 1).
      await must('chroot', [root, '/bin/sh', '-c', rpmPost, 'post', '1'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    },
  },
];

for (const flavour of flavours) {
  test.serial(`${flavour.name}: boots under systemd, serves, reloads, stops, initscript, same GIDs after a reboot`, async (t) => {
    const t0 = Date.now();
    const c = await Container.create(base);
    try {
      placeFixture(c.root);
      await flavour.install(c.root);
      t.false(fs.existsSync(path.join(c.root, 'etc/slicename')), 'nothing started at install time');

      const state = await c.boot(hostname);
      t.true(['running', 'degraded'].includes(state), `system state ${state}`);
      t.is((await c.exec(['systemctl', 'is-enabled', 'sliceid.service'])).stdout.trim(), 'enabled');
      let pid = await ready(c);
      t.is((await c.exec(['systemctl', 'is-active', 'sliceid.service'])).stdout.trim(), 'active');
      t.is(await mainPid(c), pid, 'the unit runs the daemon that wrote the pidfile');
      const failed = (await c.exec(['systemctl', '--failed', '--plain', '--no-legend'])).stdout;
      t.notRegex(failed, /sliceid/, failed);
      pid = await slicehooks(t, c, pid);

      // The identity files and the state directory.
      t.is(fs.readFileSync(c.inside('/etc/slicename'), 'utf8'), fixture.expected.slicename);
      for (const f of ['/etc/slicename', '/etc/slice.gid', '/etc/node.gid']) t.is(mode(c.inside(f)), '0644', `mode of ${f}`);
      for (const f of ['/etc/slice.gid', '/etc/node.gid']) t.regex(fs.readFileSync(c.inside(f), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
      t.is(mode(c.inside('/var/lib/sliceid')), '0700', 'state directory');
      const show = await c.mustExec(['sliceid', 'show-gid', '/etc/slice.gid', '--json']);
      t.true(show.includes(fixture.expected.slice.urn), 'the slice GID names the fixture slice');

      // GetSSHKeys over TCP and the socket: what `sliceid keys` says, the fixture's keys.
      const keys = await getSshKeys(c);
      t.deepEqual(keys.unix, keys.tcp);
      const cli = JSON.parse(await c.mustExec(['sliceid', 'keys', '--json'])) as Record<string, string>;
      t.deepEqual(keys.tcp, cli);
      t.deepEqual(Object.keys(keys.tcp), [slice]);
      const served = keys.tcp[slice]!.split('\n');
      t.true(served.every((k) => fixtureKeys.includes(k)), 'only the fixture users keys');
      t.true(fixtureKeys.filter((k) => k.startsWith('ssh-rsa ')).every((k) => served.includes(k)), 'every ssh-rsa key of the fixture');

      // systemctl reload: SIGHUP, a full refresh by the same daemon. A key added to the accounts
      // file meanwhile is served.
      const newKey = await freshRsaKey();
      fs.appendFileSync(path.join(c.root, 'var/emulab/boot/tmcc/accounts'), `PUBKEY LOGIN=ben KEY="${newKey}"\n`);
      await c.mustExec(['systemctl', 'reload', 'sliceid.service']);
      await until(async () => (await getSshKeys(c)).tcp[slice]?.split('\n').includes(newKey), 30_000, 'the added key');
      await until(async () => (await c.exec(['journalctl', '-u', 'sliceid.service', '--no-pager', '-o', 'cat'])).stdout.includes('SIGHUP'), 30_000, 'the SIGHUP refresh in the journal');
      t.is(await mainPid(c), pid, 'reload kept the daemon');

      // systemctl stop.
      await c.mustExec(['systemctl', 'stop', 'sliceid.service']);
      t.is((await c.exec(['systemctl', 'is-active', 'sliceid.service'])).stdout.trim(), 'inactive');
      t.false(fs.existsSync(c.inside('/run/sliceid.pid')), 'pidfile removed');
      // The socket file stays (root's, so the path is never free for another server); nothing answers.
      const sock = fs.lstatSync(c.inside('/tmp/nodemanager.api'));
      t.true(sock.isSocket() && sock.uid === 0, 'root-owned socket file kept');
      t.not((await c.exec(['python3', '-c', GETSSHKEYS_PY, '812', '/tmp/nodemanager.api'])).code, 0, 'nothing answers');

      // The SysV initscript under the container's /bin/sh (dash): start, status, stop.
      const sv = (action: string) => c.exec(['/bin/sh', flavour.initscript, action], { timeoutMs: 90_000 });
      t.is((await sv('status')).code, 3, 'initscript status: stopped');
      const st = await sv('start');
      t.is(st.code, 0, st.stdout + st.stderr);
      const svPid = await ready(c);
      const status = await sv('status');
      t.is(status.code, 0);
      t.regex(status.stdout, new RegExp(`pid ${svPid}\\b.*running`));
      t.true((await getSshKeys(c)).tcp[slice]?.split('\n').includes(newKey), 'initscript daemon serves the keys');
      t.is((await sv('stop')).code, 0);
      t.is((await sv('status')).code, 3, 'initscript status after stop');
      t.false(fs.existsSync(c.inside(`/proc/${svPid}`)), 'initscript daemon gone');

      // Reboot: the unit starts again and nothing is issued again.
      const gids = ['/etc/slice.gid', '/etc/node.gid'].map((f) => sha(c.inside(f)));
      const stateFiles = fs.readdirSync(c.inside('/var/lib/sliceid/gid')).sort();
      t.is(await c.poweroff(), 0, 'clean poweroff');
      await c.boot(hostname);
      const pid2 = await ready(c);
      t.is((await c.exec(['systemctl', 'is-active', 'sliceid.service'])).stdout.trim(), 'active');
      t.deepEqual(['/etc/slice.gid', '/etc/node.gid'].map((f) => sha(c.inside(f))), gids, 'same GIDs after the reboot');
      t.deepEqual(fs.readdirSync(c.inside('/var/lib/sliceid/gid')).sort(), stateFiles);
      t.true((await getSshKeys(c)).tcp[slice]?.split('\n').includes(newKey), 'the cache survived');
      t.true(pid2 > 0);

      if (flavour.name === '.deb') await debLifecycle(t, c);
      t.is(await c.poweroff(), 0, 'clean poweroff');
      t.log(`${flavour.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      t.log(c.consoleTail);
      throw err;
    } finally {
      await c.dispose();
    }
  });
}

async function freshRsaKey(): Promise<string> {
  const dir = tempDir('sliceid-key-');
  await must('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'ben@boot-test', '-f', path.join(dir, 'k')]);
  return fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim();
}

/** Upgrade (restart), remove (stop, mask, conffiles kept), purge (everything gone), systemd running. */
async function debLifecycle(t: import('ava').ExecutionContext, c: Container): Promise<void> {
  const pidBefore = await mainPid(c);
  // An edited conffile must survive the upgrade and the removal.
  fs.appendFileSync(c.inside('/etc/default/sliceid'), '# edited by the boot test\n');
  // The same package as version <version>-2: unpack, bump, repack.
  const dir = tempDir('sliceid-deb2-');
  await must('dpkg-deb', ['-R', deb, path.join(dir, 'x')]);
  const control = path.join(dir, 'x/DEBIAN/control');
  fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${pkg.version}-2`));
  await must('dpkg-deb', ['--root-owner-group', '-Zxz', '-z0', '-b', path.join(dir, 'x'), path.join(c.root, 'root/sliceid2.deb')]);
  const up = await c.exec(['dpkg', '-i', '/root/sliceid2.deb'], { timeoutMs: 180_000 });
  t.is(up.code, 0, up.stderr);
  t.regex((await c.mustExec(['dpkg-query', '-W', '-f', '${Version}', 'sliceid'])).trim(), /-2$/);
  const pidAfter = await ready(c);
  t.not(pidAfter, pidBefore, 'the upgrade restarted the daemon');
  t.is(await mainPid(c), pidAfter);
  t.regex(fs.readFileSync(c.inside('/etc/default/sliceid'), 'utf8'), /edited by the boot test/, 'edited conffile kept');

  const rm = await c.exec(['dpkg', '-r', 'sliceid'], { timeoutMs: 120_000 });
  t.is(rm.code, 0, rm.stderr);
  t.not((await c.exec(['systemctl', 'is-active', 'sliceid.service'])).stdout.trim(), 'active', 'stopped on removal');
  t.false(fs.existsSync(c.inside(`/proc/${pidAfter}`)), 'the daemon is gone');
  t.false(fs.existsSync(c.inside('/usr/lib/sliceid')), 'program removed');
  t.true(fs.existsSync(c.inside('/etc/sliceid/sliceid.toml')), 'conffiles kept on removal');
  t.true(fs.existsSync(c.inside('/var/lib/sliceid/gid')), 'state kept on removal');

  // The test's slice hooks are the admin's files, not the package's: removed first, as an admin would.
  fs.rmSync(c.inside('/etc/sliceid/slice.d'), { recursive: true, force: true });
  const purge = await c.exec(['dpkg', '-P', 'sliceid'], { timeoutMs: 120_000 });
  t.is(purge.code, 0, purge.stderr);
  for (const gone of ['/etc/sliceid', '/etc/default/sliceid', '/var/lib/sliceid', '/etc/slicename', '/etc/slice.gid', '/etc/init.d/sliceid']) {
    t.false(fs.existsSync(c.inside(gone)), `${gone} purged`);
  }
  t.is((await c.exec(['sh', '-c', 'ls /etc/systemd/system/*/sliceid.service /etc/rc?.d/*sliceid 2>/dev/null'])).stdout, '', 'no enablement or rc links left');
  t.is((await c.exec(['dpkg-query', '-W', 'sliceid'])).code, 1, 'dpkg forgot the package');
}


/** GetSSHKeys from inside a guest's network namespace (python3 of the container, nsenter --net only). */
async function keysInGuest(c: Container, netns: string, socket?: string): Promise<{ tcp: Record<string, string>; unix?: Record<string, string> }> {
  return JSON.parse(await c.mustExec(['nsenter', `--net=${netns}`, '--', 'python3', '-c', GETSSHKEYS_PY, '812', ...(socket ? [socket] : [])])) as { tcp: Record<string, string>; unix?: Record<string, string> };
}

/** What the host's probe hook (placed by the shared-host test) wrote for a guest, once it has. */
function hookProbe(c: Container, guest: string): Promise<string> {
  return until(() => {
    try {
      return fs.readFileSync(c.inside(`/var/log/probe-${guest}`), 'utf8');
    } catch {
      return '';
    }
  }, 60_000, `the slice hook for guest ${guest}`);
}

/**
 * A guest as a container manager makes one, inside the booted container: a transient unit running
 * a busybox chroot in its own network and UTS namespaces (its own mount namespace and tmpfs /tmp
 * with `ownMounts`, as Docker's), loopback up. Returns the guest's process (container pid).
 */
async function startGuestIn(c: Container, name: string, root: string, ownMounts: boolean): Promise<number> {
  const script = `${root}/bin/busybox ip link set lo up && ${ownMounts ? `mount -t tmpfs -o mode=1777 tmpfs ${root}/tmp && ` : ''}exec chroot ${root} /bin/busybox sleep 1000000`;
  await c.mustExec(['systemd-run', '--quiet', `--unit=guest-${name}`, 'unshare', ownMounts ? '-num' : '-nu', 'sh', '-c', script]);
  const pid = await until(async () => Number((await c.mustExec(['systemctl', 'show', '-P', 'MainPID', `guest-${name}.service`])).trim()), 10_000, `guest ${name}'s process`);
  await until(() => {
    try {
      return fs.readlinkSync(c.inside(`/proc/${pid}/root`)) === root;
    } catch {
      return false;
    }
  }, 10_000, `guest ${name} in its chroot`);
  return pid;
}

test.serial('.deb on a shared host: sliceid-host.service serves guests that come after it, inside their namespaces; SysV SLICEID_MODE=host', async (t) => {
  const t0 = Date.now();
  const c = await Container.create(base);
  try {
    // Two guests' trees (a fixture node tree and busybox each; no sliceid, no python, no node):
    // pcvm1-1, a Docker-style vnode (its netns bound at /var/run/netns/pcvm1-1, its own mounts);
    // ovz101, an OpenVZ-style one given in the config by pid and root (a host path).
    const docker = guestTree('pg-vnode', path.join(c.root, 'srv/guests/pcvm1-1'));
    const ovz = guestTree('emulab-pnode', path.join(c.root, 'srv/guests/ovz101'));
    const dockerRoot = `/${path.relative(c.root, docker)}`;
    const ovzRoot = `/${path.relative(c.root, ovz)}`;
    fs.copyFileSync(deb, path.join(c.root, 'root/sliceid.deb'));
    await must('chroot', [c.root, 'dpkg', '-i', '/root/sliceid.deb'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' } });
    // The host's slice hook: it records, on the host's file system, which guest and slice it ran
    // for, the network namespace it ran in, and the slices the API at SLICEID_API_URL serves there.
    fs.mkdirSync(path.join(c.root, 'etc/sliceid/slice.d'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(c.root, 'etc/sliceid/slice.d/10-probe'), [
      '#!/bin/sh',
      'set -e',
      'out=/var/log/probe-$SLICEID_GUEST',
      'echo "guest=$SLICEID_GUEST slice=$SLICEID_SLICENAME pid=$SLICEID_GUEST_PID" > $out.new',
      'echo "netns=$(readlink /proc/self/ns/net)" >> $out.new',
      `python3 -c 'import sys, xmlrpc.client as x; print("served=" + ",".join(sorted(x.ServerProxy(sys.argv[1]).GetSSHKeys())))' "$SLICEID_API_URL" >> $out.new`,
      'mv $out.new $out',
      'echo probed',
      '',
    ].join('\n'), { mode: 0o755 });
    await c.boot('shared-host');
    t.is((await c.exec(['systemctl', 'is-enabled', 'sliceid-host.service'])).stdout.trim(), 'disabled', 'not enabled by the package');
    t.is((await c.exec(['systemctl', 'is-active', 'sliceid-host.service'])).stdout.trim(), 'inactive');

    // The recipe: the node daemon off, the host daemon on (Conflicts= stops the node one anyway).
    await c.mustExec(['systemctl', 'enable', '--now', 'sliceid-host.service']);
    t.is((await c.exec(['systemctl', 'is-active', 'sliceid.service'])).stdout.trim(), 'inactive', 'Conflicts= stopped the node daemon');
    await c.mustExec(['systemctl', 'disable', 'sliceid.service']);
    const pid = Number((await c.mustExec(['systemctl', 'show', '-P', 'MainPID', 'sliceid-host.service'])).trim());
    t.true(pid > 0);
    // Up with no guest yet, its (empty) guest list published.
    await until(() => fs.existsSync(c.inside('/run/sliceid.guests')), 30_000, 'the guests file');

    // A Docker vnode appears: its namespace bound at /var/run/netns/<vnodeid> (Emulab's bindNetNS),
    // seen through inotify from inside the unit's sandbox.
    const gpid = await startGuestIn(c, 'pcvm1-1', dockerRoot, true);
    await c.mustExec(['sh', '-c', 'mkdir -p /var/run/netns && touch /var/run/netns/pcvm1-1 && mount --bind /proc/$1/ns/net /var/run/netns/pcvm1-1', 'sh', String(gpid)]);
    const appeared = Date.now();
    // (The namespace file appears empty a moment before the bind mount: the guest is served at
    // once, with no slice, and gets its identity when its process is found, 0.1 s later.)
    const served = await until(async () => {
      const r = await c.exec(['nsenter', '--net=/var/run/netns/pcvm1-1', '--', 'python3', '-c', GETSSHKEYS_PY, '812']);
      return r.code === 0 && r.stdout.includes('labpg3_sl1') ? r.stdout : '';
    }, 30_000, 'the Docker vnode to answer its slice from inside');
    const firstAnswerMs = Date.now() - appeared;
    t.deepEqual(Object.keys((JSON.parse(served) as { tcp: Record<string, string> }).tcp), ['labpg3_sl1'], 'its own slice, asked from inside its namespace');
    const inDocker = await keysInGuest(c, '/var/run/netns/pcvm1-1', `/proc/${gpid}/root/tmp/nodemanager.api`);
    t.deepEqual(inDocker.unix, inDocker.tcp, 'the socket in its own /tmp answers the same');
    t.is(fs.readFileSync(c.inside(`/proc/${gpid}/root/etc/slicename`), 'utf8').trim(), 'labpg3_sl1', 'its /etc/slicename');
    t.regex(fs.readFileSync(c.inside(`/proc/${gpid}/root/etc/slice.gid`), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    t.false(fs.existsSync(c.inside('/etc/slicename')), 'the host writes no identity of its own');
    // The host's hook ran once for the guest, in its own unit sliceid-hooks@pcvm1-1.service, inside
    // the guest's network namespace, its API answering there.
    const probe = await hookProbe(c, 'pcvm1-1');
    const guestNetns = (await c.mustExec(['readlink', `/proc/${gpid}/ns/net`])).trim();
    t.is(probe, `guest=pcvm1-1 slice=labpg3_sl1 pid=${gpid}\nnetns=${guestNetns}\nserved=labpg3_sl1\n`);
    t.not(guestNetns, (await c.mustExec(['readlink', '/proc/1/ns/net'])).trim());
    await until(async () => (await c.exec(['systemctl', 'is-active', 'sliceid-hooks@pcvm1-1.service'])).stdout.trim() !== 'activating', 60_000, 'the guest\'s hooks unit to finish');
    t.is((await c.mustExec(['systemctl', 'show', '-P', 'Result', 'sliceid-hooks@pcvm1-1.service'])).trim(), 'success');
    const guestHooksLog = await c.mustExec(['journalctl', '-u', 'sliceid-hooks@pcvm1-1.service', '--no-pager', '-o', 'cat']);
    t.regex(guestHooksLog, /^hook output guest=pcvm1-1 hook=10-probe stream=stdout line=probed$/m, guestHooksLog);
    const guestRuns = JSON.parse(await c.mustExec(['sliceid', 'hooks', '--json', '--guest', 'pcvm1-1'])) as { slices: Record<string, { hooks: Record<string, { outcome: string }> }> };
    t.deepEqual(Object.values(guestRuns.slices).map((s) => s.hooks['10-probe']?.outcome), ['ok'], JSON.stringify(guestRuns));

    // An OpenVZ-style guest from the config ([[guest]] pid + root, a host path), at a reload.
    const opid = await startGuestIn(c, 'ovz101', ovzRoot, false);
    fs.appendFileSync(c.inside('/etc/sliceid/sliceid.toml'), `\n[[guest]]\nname = "ovz101"\npid = ${opid}\nroot = "${ovzRoot}"\nhostname = "node1.exp.proj.emulab.net"\n`);
    await c.mustExec(['systemctl', 'reload', 'sliceid-host.service']);
    const ovzKeys = await until(async () => {
      const r = await c.exec(['nsenter', `--net=/proc/${opid}/ns/net`, '--', 'python3', '-c', GETSSHKEYS_PY, '812']);
      return r.code === 0 && r.stdout.includes('wlab_radio') ? (JSON.parse(r.stdout) as { tcp: Record<string, string> }).tcp : undefined;
    }, 30_000, 'the configured guest to answer its slice from inside');
    t.deepEqual(Object.keys(ovzKeys), ['wlab_radio'], 'pinned: the other guest sees its own slice only');
    t.is(fs.readFileSync(path.join(ovz, 'etc/slicename'), 'utf8').trim(), 'wlab_radio', 'written into a root given as a host path (the sandbox leaves it writable)');
    t.deepEqual(Object.keys((await keysInGuest(c, '/var/run/netns/pcvm1-1')).tcp), ['labpg3_sl1']);
    const ovzProbe = await hookProbe(c, 'ovz101');
    t.is(ovzProbe, `guest=ovz101 slice=wlab_radio pid=${opid}\nnetns=${(await c.mustExec(['readlink', `/proc/${opid}/ns/net`])).trim()}\nserved=wlab_radio\n`);

    // status --host checks every guest from inside.
    const st = await c.exec(['sliceid', 'status', '--host']);
    t.is(st.code, 0, st.stderr);
    t.regex(st.stdout, new RegExp(`^host daemon pid ${pid}, 2 guest\\(s\\), config /etc/sliceid/sliceid\\.toml$`, 'm'), st.stdout);
    t.is(st.stdout.match(/from inside: +ok$/gm)?.length, 2, st.stdout);
    t.is(Number((await c.mustExec(['systemctl', 'show', '-P', 'MainPID', 'sliceid-host.service'])).trim()), pid, 'the same daemon throughout (reload, no restart)');
    const failed = (await c.exec(['systemctl', '--failed', '--plain', '--no-legend'])).stdout;
    t.notRegex(failed, /sliceid/, failed);
    const log = await c.mustExec(['journalctl', '-u', 'sliceid-host.service', '--no-pager', '-o', 'cat']);
    t.notRegex(log, /EPERM|EACCES|Operation not permitted|Permission denied/, log);

    // A clean stop: nothing answers inside, the guests file goes.
    await c.mustExec(['systemctl', 'stop', 'sliceid-host.service']);
    t.is((await c.exec(['systemctl', 'is-active', 'sliceid-host.service'])).stdout.trim(), 'inactive');
    t.false(fs.existsSync(c.inside('/run/sliceid.guests')), 'guests file removed');
    t.not((await c.exec(['nsenter', '--net=/var/run/netns/pcvm1-1', '--', 'python3', '-c', GETSSHKEYS_PY, '812'])).code, 0, 'nothing answers after the stop');

    // SysV hosts: the same initscript with SLICEID_MODE="host" in /etc/default/sliceid.
    fs.appendFileSync(c.inside('/etc/default/sliceid'), 'SLICEID_MODE="host"\n');
    const sv = (action: string) => c.exec(['/bin/sh', '/etc/init.d/sliceid', action], { timeoutMs: 90_000 });
    const started = await sv('start');
    t.is(started.code, 0, started.stdout + started.stderr);
    const svStatus = await sv('status');
    t.is(svStatus.code, 0, svStatus.stdout);
    const svPid = Number(/pid (\d+)/.exec(svStatus.stdout)?.[1]);
    t.regex(fs.readFileSync(c.inside('/run/sliceid.guests'), 'utf8'), new RegExp(`^  "pid": ${svPid},$`, 'm'), 'the host daemon the initscript started');
    t.deepEqual(Object.keys((await until(async () => {
      const r = await c.exec(['nsenter', '--net=/var/run/netns/pcvm1-1', '--', 'python3', '-c', GETSSHKEYS_PY, '812']);
      return r.code === 0 && r.stdout.includes('labpg3_sl1') ? (JSON.parse(r.stdout) as { tcp: Record<string, string> }).tcp : undefined;
    }, 30_000, 'the initscript host daemon to answer inside'))), ['labpg3_sl1']);
    t.is((await sv('stop')).code, 0);
    t.is((await sv('status')).code, 3);

    t.is(await c.poweroff(), 0, 'clean poweroff');
    t.log(`shared host: its slice answered inside a new Docker vnode ${firstAnswerMs} ms after its namespace was bound; ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  } catch (err) {
    t.log(c.consoleTail);
    throw err;
  } finally {
    await c.dispose();
  }
});
