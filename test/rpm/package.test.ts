// The RPM, end to end: `npm run rpm` builds it, rpm shows its layout, modes and scriptlets,
// rpmlint has nothing unexplained to say, and the package installed into a scratch root (a copy of
// a fixture node tree) runs `once` and `run` there, answers Python's xmlrpc.client, and its
// initscript starts, reports, reloads and stops the daemon on that root. The system-nodejs variant
// is built and run on this machine's node too.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { copyTree, goodTrees, moduleLoadRecorder, NOT_LOADED_AT_START, projectDir, tempDir, type FixtureTree } from '../helpers/fixtures.js';
import { GETSSHKEYS_PY } from '../helpers/py-client.js';
import { startInstalledRun } from '../helpers/installed.js';
import { jsonLines } from '../helpers/daemon.js';

const execFileP = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, {
      cwd: opts.cwd ?? projectDir,
      env: opts.env ?? process.env,
      maxBuffer: 256 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Poll `fn` until it returns a truthy value or the deadline passes. */
async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { version: string };
const trees = goodTrees();
const primary: FixtureTree = trees.find((t) => t.label === 'own/emulab-pnode') ?? trees[0]!;

async function pyGetSshKeys(port: number, socket: string | undefined): Promise<{ tcp: unknown; unix?: unknown }> {
  return JSON.parse(await must('python3', ['-c', GETSSHKEYS_PY, String(port), socket ?? ''])) as { tcp: unknown; unix?: unknown };
}

interface Built {
  file: string;
  seconds: number;
}

let bundled: Built;
/** The primary fixture copy with the bundled package installed into it (rpm --root). */
let root: string;

test.before(async () => {
  await must('sh', ['packaging/ensure-tools.sh', 'rpm=rpm', 'rpmlint=rpmlint', 'checkbashisms=devscripts', 'python3=python3', 'systemd-analyze=systemd', 'bash=bash', 'busybox=busybox-static']);
  const started = Date.now();
  // Exactly what a developer or CI runs: npm run rpm (it compiles dist/ itself).
  const out = await must('npm', ['run', 'rpm', '--silent'], { timeoutMs: 15 * 60_000 });
  const file = path.join(projectDir, out.trim().split('\n').pop()!);
  bundled = { file, seconds: (Date.now() - started) / 1000 };
  root = copyTree(primary.source);
  await must('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '-i', '--nodeps', '--noscripts', file]);
});

test.serial('npm run rpm makes dist/sliceid-<version>-<release>.x86_64.rpm', (t) => {
  t.is(path.relative(projectDir, bundled.file), `dist/sliceid-${pkg.version}-1.x86_64.rpm`);
  const size = fs.statSync(bundled.file).size;
  t.log(`${path.basename(bundled.file)}: ${(size / 1048576).toFixed(1)} MiB, npm run rpm took ${bundled.seconds.toFixed(0)} s`);
  t.true(size > 10 * 1048576 && size < 80 * 1048576, `package size ${size}`);
});

interface FileEntry {
  mode: string;
  flags: string;
  user: string;
  group: string;
}

async function fileTable(file: string): Promise<Map<string, FileEntry>> {
  const out = await must('rpm', ['-qp', '--qf', '[%{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILEFLAGS:fflags}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\n]', file]);
  const map = new Map<string, FileEntry>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [name, mode, flags, user, group] = line.split('\t') as [string, string, string, string, string];
    map.set(name, { mode, flags, user, group });
  }
  return map;
}

test.serial('rpm -qlp / --dump: the layout, modes and config files', async (t) => {
  const list = (await must('rpm', ['-qlp', bundled.file])).split('\n');
  const files = await fileTable(bundled.file);
  const expect: Array<[string, string, string?]> = [
    ['/usr/lib/sliceid', '40755'],
    ['/usr/lib/sliceid/bin/sliceid.js', '100644'],
    ['/usr/lib/sliceid/dist/src/cli.js', '100644'],
    ['/usr/lib/sliceid/package.json', '100644'],
    ['/usr/lib/sliceid/runtime/bin/node', '100755'],
    ['/usr/lib/sliceid/node_modules/better-sqlite3/build/Release/better_sqlite3.node', '100755'],
    ['/usr/bin/sliceid', '100755'],
    ['/usr/lib/sliceid/libexec/authorized-keys', '100755'],
    ['/usr/lib/sliceid/libexec/package.json', '100644'],
    ['/etc/sliceid', '40755'],
    ['/etc/sliceid/sliceid.toml', '100644', 'cn'],
    ['/etc/sysconfig/sliceid', '100644', 'cn'],
    ['/etc/rc.d/init.d/sliceid', '100755'],
    ['/usr/lib/systemd/system/sliceid.service', '100644'],
    ['/usr/lib/systemd/system/sliceid-hooks.service', '100644'],
    ['/usr/lib/systemd/system/sliceid-hooks@.service', '100644'],
    ['/usr/lib/systemd/system/sliceid-host.service', '100644'],
    ['/usr/lib/systemd/system-preset/80-sliceid.preset', '100644'],
    ['/etc/logrotate.d/sliceid', '100644', 'cn'],
    ['/var/lib/sliceid', '40700'],
    ['/var/log/sliceid.log', '100640', 'g'],
    ['/etc/slicename', '100644', 'g'],
    ['/etc/slice.gid', '100644', 'g'],
    ['/etc/node.gid', '100644', 'g'],
    ['/usr/share/man/man8/sliceid.8.gz', '100644'],
  ];
  for (const [name, mode, flags] of expect) {
    t.true(list.includes(name), `rpm -qlp lists ${name}`);
    const f = files.get(name);
    t.is(f?.mode, mode, `mode of ${name}`);
    if (flags) t.is(f?.flags, flags, `flags of ${name}`);
    t.is(f?.user, 'root', `owner of ${name}`);
  }
  // Nothing of the developer's checkout: no TypeScript, no tests, no dev dependencies.
  t.false(list.some((f) => /\/(ava|typescript|tsx|fast-check|autocannon)\//.test(f)), 'no dev dependencies');
  t.false(list.some((f) => f.endsWith('.ts') || f.endsWith('.map')), 'no TypeScript sources or maps');
  t.false(list.some((f) => f.includes('/prebuild-install/') || f.includes('/better-sqlite3/deps/')), 'no install-time leftovers');
  const dump = await must('rpm', ['-qp', '--dump', bundled.file]);
  const state = dump.split('\n').find((l) => l.startsWith('/var/lib/sliceid '));
  t.regex(state ?? '', /^\/var\/lib\/sliceid \d+ \d+ [0-9a-f]+ 040700 root root /);
});

test.serial('rpm -qp --scripts: register, deregister on erase, restart on upgrade only if running', async (t) => {
  const scripts = await must('rpm', ['-qp', '--scripts', bundled.file]);
  const section = (name: string): string => {
    const m = new RegExp(`^${name} scriptlet \\(using /bin/sh\\):\\n([\\s\\S]*?)(?=^\\w+ scriptlet|$(?![\\s\\S]))`, 'm').exec(scripts);
    return m?.[1] ?? '';
  };
  const post = section('postinstall');
  const preun = section('preuninstall');
  const postun = section('postuninstall');
  t.regex(post, /chkconfig --add sliceid/);
  t.regex(post, /systemctl --no-reload preset sliceid\.service sliceid-host\.service/);
  t.regex(preun, /if \[ "\$1" -eq 0 \]/);
  t.regex(preun, /\/etc\/rc\.d\/init\.d\/sliceid stop/);
  t.regex(preun, /chkconfig --del sliceid/);
  t.regex(preun, /systemctl --no-reload disable sliceid\.service sliceid-host\.service/);
  t.regex(preun, /systemctl stop sliceid\.service sliceid-host\.service/);
  t.regex(postun, /systemctl try-restart sliceid\.service sliceid-host\.service/);
  t.regex(postun, /\/etc\/rc\.d\/init\.d\/sliceid condrestart/);
  // Each scriptlet is portable sh.
  const dir = tempDir('sliceid-scriptlets-');
  for (const [name, body] of Object.entries({ post, preun, postun })) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}`);
    t.is((await run('sh', ['-n', file])).code, 0, `sh -n ${name}`);
    const cb = await run('checkbashisms', ['--posix', file]);
    t.is(cb.code, 0, `checkbashisms ${name}: ${cb.stderr}${cb.stdout}`);
  }
});

test.serial('bundled package: the runtime floor is glibc 2.28, and nothing asks for nodejs', async (t) => {
  const requires = (await must('rpm', ['-qpR', bundled.file])).split('\n').map((l) => l.trim());
  t.false(requires.some((r) => /^nodejs\b/.test(r)), requires.join(', '));
  const glibc = requires.flatMap((r) => /^libc\.so\.6\(GLIBC_([\d.]+)\)/.exec(r)?.[1] ?? []);
  const newest = glibc.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  t.is(newest, '2.28', `newest glibc symbol version required: ${newest}`);
  t.false(requires.some((r) => /GLIBCXX_3\.4\.(2[2-9]|3\d)/.test(r)), 'libstdc++ no newer than GCC 5 (GLIBCXX_3.4.21)');
  const provides = await must('rpm', ['-qp', '--provides', bundled.file]);
  t.regex(provides, /^bundled\(nodejs\) = 22\./m);
  t.notRegex(provides, /better_sqlite3|\.node\(/, 'node_modules provides nothing to other packages');
});

test.serial('installed: the bundled runtime and better-sqlite3 load together', async (t) => {
  const node = path.join(root, 'usr/lib/sliceid/runtime/bin/node');
  const out = await must(node, [
    '-e',
    'const D = require(process.argv[1]); const db = new D(":memory:"); console.log(JSON.stringify({ v: process.version, abi: process.versions.modules, sqlite: db.prepare("select sqlite_version() as s").get().s }))',
    path.join(root, 'usr/lib/sliceid/node_modules/better-sqlite3'),
  ]);
  const info = JSON.parse(out) as { v: string; abi: string; sqlite: string };
  t.regex(info.v, /^v22\./);
  t.regex(info.sqlite, /^3\./);
});

test.serial('installed: the payload references neither the build tree nor the developer home', async (t) => {
  const lib = path.join(root, 'usr/lib/sliceid');
  const needles = [projectDir + '/', path.join(projectDir, 'packaging', '.build'), '/work/'];
  for (const needle of needles) {
    const r = await run('grep', ['-rlF', '--', needle, lib, path.join(root, 'usr/bin/sliceid'), path.join(root, 'etc')]);
    t.is(r.stdout.trim(), '', `files naming ${needle}`);
  }
  // The official node binary's debug info names its own build host's /root/... paths: not ours.
  const home = os.homedir();
  const r = await run('sh', ['-c', 'find "$1" -type f ! -path "$1/runtime/bin/node" -exec grep -lF -e "$2" -e /root/ {} +', 'sh', lib, home + '/']);
  t.is(r.stdout.trim(), '', 'files naming the home directory');
});

test.serial('installed /usr/bin/sliceid: `once` on every fixture tree, with nothing on PATH', async (t) => {
  for (const tree of trees) {
    const r = tree === primary ? root : copyTree(tree.source);
    // env -i and a PATH that holds nothing: the wrapper and the bundled runtime need no host tool.
    const env = tree === primary ? { PATH: '/nonexistent' } : { ...process.env, SLICEID_NODE: '' };
    const res = await run(path.join(root, 'usr/bin/sliceid'), ['once', '--root', r, '--json'], { env });
    t.is(res.code, 0, `${tree.label}: ${res.stderr}`);
    t.is(fs.readFileSync(path.join(r, 'etc/slicename'), 'utf8'), tree.expected.slicename, tree.label);
    for (const gid of ['etc/slice.gid', 'etc/node.gid']) {
      t.regex(fs.readFileSync(path.join(r, gid), 'utf8'), /^-----BEGIN CERTIFICATE-----/, `${tree.label} ${gid}`);
    }
    const report = JSON.parse(res.stdout) as { identity?: { slicename?: string; slice?: { urn?: string } } };
    t.is(report.identity?.slice?.urn, tree.expected.slice.urn, tree.label);
  }
  // The shipped configuration file is the one read (every setting commented out, all defaults).
  const res = await run(path.join(root, 'usr/bin/sliceid'), ['once', '--root', root, '--json'], { env: { PATH: '/nonexistent' } });
  t.is((JSON.parse(res.stdout) as { configFile?: string }).configFile, path.join(root, 'etc/sliceid/sliceid.toml'));
});

test.serial('installed /usr/bin/sliceid: `run` answers Python xmlrpc.client GetSSHKeys, stops on SIGTERM; the bundled runtime loads no undici', async (t) => {
  const rec = moduleLoadRecorder();
  const d = await startInstalledRun(path.join(root, 'usr/bin/sliceid'), root, { PATH: '/usr/bin:/bin', SLICEID_NODE: '', ...rec.env });
  const port = d.ready['port'] as number;
  const socket = d.ready['socket'] as string | undefined;
  t.is(socket, path.join(root, 'tmp/nodemanager.api'));
  t.true(fs.existsSync(path.join(root, 'var/run/sliceid.pid')));
  const keys = await pyGetSshKeys(port, socket);
  t.deepEqual(keys.tcp, primary.expected.GetSSHKeys);
  t.deepEqual(keys.unix, primary.expected.GetSSHKeys);
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  t.is(await d.exited, 0);
  t.true(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`);
  t.true(fs.lstatSync(socket!).isSocket(), 'the socket file stays (the path is never free for someone else)');
  t.false(fs.existsSync(path.join(root, 'var/run/sliceid.pid')), 'pidfile removed');
  // Node 22 (the runtime the package carries) has builtin exports that load more when an ES module
  // imports the builtin (src/builtins.ts); the machine's node 20 has none, so only this test shows it.
  const loaded = rec.loaded();
  t.true(loaded.includes('NativeModule http'), 'the list is the one of the daemon');
  for (const m of NOT_LOADED_AT_START) t.false(loaded.includes(m), m);
});

test.serial("installed libexec/authorized-keys: starts the bundled runtime itself (#!) and prints what `sliceid authorized-keys` prints", async (t) => {
  const command = path.join(root, 'usr/lib/sliceid/libexec/authorized-keys');
  t.is(fs.readFileSync(command, 'utf8').split('\n')[0], '#!/usr/lib/sliceid/runtime/bin/node');
  // The #! names the runtime at its installed place; in this scratch root it is started by hand.
  const runtime = path.join(root, 'usr/lib/sliceid/runtime/bin/node');
  const logins = fs.readdirSync(path.join(root, 'etc/sliceid/authorized_keys'));
  t.true(logins.length > 0, 'the daemon wrote key files');
  for (const login of [...logins, 'nobody-here']) {
    const direct = await run(runtime, [command, login, '--root', root], { env: {} });
    const wrapped = await run(path.join(root, 'usr/bin/sliceid'), ['authorized-keys', login, '--root', root], { env: { PATH: '/nonexistent' } });
    t.is(direct.code, 0, direct.stderr);
    t.is(direct.stdout, wrapped.stdout, login);
    if (login !== 'nobody-here') t.is(direct.stdout, fs.readFileSync(path.join(root, 'etc/sliceid/authorized_keys', login), 'utf8'));
  }
});

test.serial('initscript and wrapper: sh -n and checkbashisms', async (t) => {
  for (const file of ['etc/rc.d/init.d/sliceid', 'usr/bin/sliceid']) {
    const full = path.join(root, file);
    t.is((await run('sh', ['-n', full])).code, 0, `sh -n ${file}`);
    const cb = await run('checkbashisms', ['--posix', full]);
    t.is(cb.code, 0, `checkbashisms --posix ${file}: ${cb.stderr}${cb.stdout}`);
  }
  const init = fs.readFileSync(path.join(root, 'etc/rc.d/init.d/sliceid'), 'utf8');
  t.regex(init, /^# chkconfig: 2345 \d+ \d+$/m);
  t.regex(init, /^### BEGIN INIT INFO$[\s\S]*^# Provides: +sliceid$[\s\S]*^### END INIT INFO$/m);
  t.notRegex(init, /mktemp -t|\/etc\/init\.d\/functions"?\s*$/m);
});

// The initscript on a temp root: every path it uses moved there through its environment.
function initEnv(r: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    SLICEID_SYSCONFIG: path.join(r, 'etc/sysconfig/sliceid'),
    SLICEID_ROOT: r,
    SLICEID_BIN: path.join(root, 'usr/bin/sliceid'),
    SLICEID_LOCKFILE: path.join(r, 'var/lock/subsys/sliceid'),
    SLICEID_LOGFILE: path.join(r, 'var/log/sliceid.log'),
    SLICEID_OPTIONS: '--port 0',
    ...extra,
  };
}

function logLines(r: string): Array<Record<string, unknown>> {
  const file = path.join(r, 'var/log/sliceid.log');
  return fs.existsSync(file) ? jsonLines(fs.readFileSync(file, 'utf8')) : [];
}

for (const shell of ['sh', 'bash']) {
  test.serial(`initscript under ${shell}: start, status, reload, condrestart, stop on a temp root`, async (t) => {
    const r = copyTree(primary.source);
    // The installed sysconfig (all commented out) is the one sourced.
    fs.mkdirSync(path.join(r, 'etc/sysconfig'), { recursive: true });
    fs.copyFileSync(path.join(root, 'etc/sysconfig/sliceid'), path.join(r, 'etc/sysconfig/sliceid'));
    const init = path.join(root, 'etc/rc.d/init.d/sliceid');
    const env = initEnv(r);
    const sv = (action: string) => run(shell, [init, action], { env, timeoutMs: 90_000 });
    const pidFile = path.join(r, 'var/run/sliceid.pid');
    const lock = path.join(r, 'var/lock/subsys/sliceid');

    t.is((await sv('status')).code, 3, 'status before start: stopped (3)');
    // An old world-readable log is made 0640 before anything is appended to it.
    fs.mkdirSync(path.join(r, 'var/log'), { recursive: true });
    fs.writeFileSync(path.join(r, 'var/log/sliceid.log'), '', { mode: 0o644 });
    const started = await sv('start');
    t.is(started.code, 0, started.stderr + started.stdout);
    t.is(fs.statSync(path.join(r, 'var/log/sliceid.log')).mode & 0o777, 0o640, 'log 0640');
    // stdout and stderr both go to the log: the packaged runtime printed nothing but JSON lines
    // (issue 25: Node 22 printed "Error: unrecognized flag --memory-reducer-single-gc").
    const notJson = fs.readFileSync(path.join(r, 'var/log/sliceid.log'), 'utf8').split('\n').filter((l) => l && jsonLines(l).length === 0);
    t.deepEqual(notJson, [], 'nothing on stderr at start');
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    t.true(alive(pid), 'daemon alive after start');
    t.true(fs.existsSync(lock), 'lock file');
    t.true(fs.existsSync(path.join(r, 'tmp/nodemanager.api')), 'socket');
    const st = await sv('status');
    t.is(st.code, 0);
    t.regex(st.stdout, new RegExp(`pid ${pid}\\b.*running`));
    t.is((await sv('start')).code, 0, 'start when running');
    t.is(Number(fs.readFileSync(pidFile, 'utf8').trim()), pid, 'still the same daemon');

    const ready = logLines(r).find((l) => l['msg'] === 'ready');
    const keys = await pyGetSshKeys(ready!['port'] as number, ready!['socket'] as string);
    t.deepEqual(keys.tcp, primary.expected.GetSSHKeys);
    t.deepEqual(keys.unix, primary.expected.GetSSHKeys);

    // reload = SIGHUP: the daemon logs a full refresh and keeps running.
    const before = logLines(r).length;
    t.is((await sv('reload')).code, 0);
    await until(() => logLines(r).slice(before).some((l) => JSON.stringify(l).includes('SIGHUP')), 10_000, 'the SIGHUP refresh in the log');
    t.true(alive(pid));

    t.is((await sv('condrestart')).code, 0);
    const pid2 = Number(fs.readFileSync(pidFile, 'utf8').trim());
    t.not(pid2, pid, 'condrestart restarted a running daemon');
    t.false(alive(pid));
    t.true(alive(pid2));

    const stopped = await sv('stop');
    t.is(stopped.code, 0, stopped.stderr);
    t.false(alive(pid2), 'daemon gone after stop');
    t.false(fs.existsSync(pidFile), 'pidfile removed');
    t.false(fs.existsSync(lock), 'lock removed');
    t.true(fs.lstatSync(path.join(r, 'tmp/nodemanager.api')).isSocket(), 'the socket file stays (the path is never free for someone else)');
    t.is((await sv('status')).code, 3);
    t.is((await sv('stop')).code, 0, 'stop when stopped');
    t.is((await sv('condrestart')).code, 0, 'condrestart when stopped');
    t.false(fs.existsSync(pidFile), 'condrestart did not start a stopped daemon');

    // LSB status: a stale pidfile (1) and a stale lock (2).
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    fs.writeFileSync(lock, '');
    t.is((await sv('status')).code, 2, 'dead but subsys locked');
    fs.writeFileSync(pidFile, `${pid2}\n`);
    t.is((await sv('status')).code, 1, 'dead but pid file exists');
    fs.rmSync(pidFile);
    fs.rmSync(lock);
    t.is((await sv('reload')).code, 7, 'reload when stopped: not running (7)');
    t.is((await sv('bogus')).code, 2, 'unknown action');
  });
}

test.serial('initscript with SLICEID_MODE=host: starts the shared host daemon (run --host), status, reload, stop', async (t) => {
  // A host booted before its guests: none yet (no <root>/var/run/netns, no [[guest]]).
  const r = tempDir('sliceid-host-root-');
  fs.mkdirSync(path.join(r, 'etc/sysconfig'), { recursive: true });
  fs.copyFileSync(path.join(root, 'etc/sysconfig/sliceid'), path.join(r, 'etc/sysconfig/sliceid'));
  fs.appendFileSync(path.join(r, 'etc/sysconfig/sliceid'), 'SLICEID_MODE="host"\nSLICEID_HOST_OPTIONS="--log-format json"\n');
  const env = initEnv(r, { SLICEID_OPTIONS: '--port 0 --no-such-node-option' });
  const init = path.join(root, 'etc/rc.d/init.d/sliceid');
  const sv = (action: string) => run('sh', [init, action], { env, timeoutMs: 90_000 });
  const started = await sv('start');
  t.is(started.code, 0, started.stdout + started.stderr);
  const st = await sv('status');
  t.is(st.code, 0);
  const pid = Number(/pid (\d+)/.exec(st.stdout)?.[1]);
  t.true(alive(pid));
  const guests = JSON.parse(fs.readFileSync(path.join(r, 'var/run/sliceid.guests'), 'utf8')) as { pid: number; guests: unknown[] };
  t.is(guests.pid, pid, 'ready: the host daemon published its guests');
  t.deepEqual(guests.guests, []);
  t.false(fs.existsSync(path.join(r, 'var/run/sliceid.pid')), 'no node daemon');
  t.false(fs.existsSync(path.join(r, 'etc/slicename')), 'the host writes no identity of its own');
  const host = await run(path.join(root, 'usr/bin/sliceid'), ['status', '--host', '--root', r], { env });
  t.regex(host.stdout, new RegExp(`^host daemon pid ${pid}, 0 guest\\(s\\), config \\(none: defaults\\)$`, 'm'));
  t.is((await sv('reload')).code, 0);
  t.true(alive(pid));
  t.is((await sv('stop')).code, 0);
  t.false(alive(pid));
  t.false(fs.existsSync(path.join(r, 'var/run/sliceid.guests')), 'guests file removed by the daemon');
  t.is((await sv('status')).code, 3);
  fs.appendFileSync(path.join(r, 'etc/sysconfig/sliceid'), 'SLICEID_MODE="hots"\n');
  const bad = await sv('start');
  t.is(bad.code, 6, 'an unknown mode is refused');
  t.regex(bad.stderr, /SLICEID_MODE must be node or host/);
});

test.serial('initscript: with no testbed data the daemon starts degraded; status says why', async (t) => {
  // Issue 25 point 4: no identity and nothing kept is served through (no slice, watching), not an exit.
  const r = tempDir('sliceid-empty-root-');
  const env = initEnv(r);
  const init = path.join(root, 'etc/rc.d/init.d/sliceid');
  const res = await run('sh', [init, 'start'], { env, timeoutMs: 90_000 });
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /OK/);
  t.is((await run('sh', [init, 'status'], { env })).code, 0);
  const st = await run(path.join(root, 'usr/bin/sliceid'), ['status', '--root', r], { env });
  t.is(st.code, 1, st.stdout);
  t.regex(st.stdout, /identity/i);
  t.is((await run('sh', [init, 'stop'], { env })).code, 0);
  t.is((await run('sh', [init, 'status'], { env })).code, 3);
});

test.serial('initscript: start fails promptly, and says so, when the config cannot be read', async (t) => {
  const r = tempDir('sliceid-bad-config-');
  fs.mkdirSync(path.join(r, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(r, 'etc/sliceid/sliceid.toml'), '[api\nport = "x"\n');
  const env = initEnv(r);
  const t0 = Date.now();
  const res = await run('sh', [path.join(root, 'etc/rc.d/init.d/sliceid'), 'start'], { env, timeoutMs: 90_000 });
  t.not(res.code, 0);
  t.regex(res.stdout, /FAILED/);
  t.regex(res.stderr, /sliceid\.toml/);
  t.true(Date.now() - t0 < 30_000, `failed after ${Date.now() - t0} ms`);
  t.false(fs.existsSync(path.join(r, 'var/lock/subsys/sliceid')), 'no lock file');
  t.is((await run('sh', [path.join(root, 'etc/rc.d/init.d/sliceid'), 'status'], { env })).code, 3);
});

test.serial('systemd unit: systemd-analyze verify, hardening and reload', async (t) => {
  const unit = fs.readFileSync(path.join(root, 'usr/lib/systemd/system/sliceid.service'), 'utf8');
  for (const line of [
    /^After=.*network\.target/m,
    /^After=.*local-fs\.target/m,
    /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
    /^Restart=on-failure$/m,
    /^NoNewPrivileges=yes$/m,
    /^ProtectHome=read-only$/m,
    /^PrivateTmp=no$/m,
    /^ProtectSystem=strict$/m,
    /^ReadWritePaths=\/etc \/var\/lib\/sliceid \/run \/tmp$/m,
    /^ExecStart=\/usr\/bin\/sliceid run \$SLICEID_OPTIONS$/m,
  ]) {
    t.regex(unit, line);
  }
  // systemd-analyze verify in a root that has the installed files plus this host's units and kill.
  const sroot = tempDir('sliceid-systemd-');
  // (Earlier tests ran the daemon in this root: its socket file stays after a stop; not copied.)
  fs.cpSync(root, sroot, { recursive: true, verbatimSymlinks: true, filter: (src) => !fs.lstatSync(src).isSocket() });
  fs.mkdirSync(path.join(sroot, 'bin'), { recursive: true });
  fs.copyFileSync(fs.existsSync('/bin/kill') ? '/bin/kill' : '/usr/bin/kill', path.join(sroot, 'bin/kill'));
  fs.chmodSync(path.join(sroot, 'bin/kill'), 0o755);
  for (const f of fs.readdirSync('/usr/lib/systemd/system')) {
    const src = path.join('/usr/lib/systemd/system', f);
    const dst = path.join(sroot, 'usr/lib/systemd/system', f);
    if (!fs.existsSync(dst) && fs.statSync(src).isFile()) fs.copyFileSync(src, dst);
  }
  // --man=no: the host's man(1) cannot see the man page installed in the scratch root.
  const res = await run('systemd-analyze', [`--root=${sroot}`, '--man=no', 'verify', '/usr/lib/systemd/system/sliceid.service', '/usr/lib/systemd/system/sliceid-hooks.service', '/usr/lib/systemd/system/sliceid-host.service']);
  t.is(res.code, 0, res.stderr);
  t.is((res.stdout + res.stderr).trim(), '', 'no warnings');
  // The shared host's unit: run --host with the privileges setns and /proc/<pid>/root take, not
  // enabled by the preset, conflicting with the node daemon's.
  const host = fs.readFileSync(path.join(root, 'usr/lib/systemd/system/sliceid-host.service'), 'utf8');
  for (const line of [
    /^ExecStart=\/usr\/bin\/sliceid run --host \$SLICEID_HOST_OPTIONS$/m,
    /^EnvironmentFile=-\/etc\/sysconfig\/sliceid$/m,
    /^Conflicts=sliceid\.service$/m,
    /^Type=simple$/m,
    /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
    /^CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_NET_BIND_SERVICE CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_CHOWN CAP_FOWNER$/m,
    /^RestrictNamespaces=net$/m,
    /^NoNewPrivileges=yes$/m,
    /^ProtectSystem=full$/m,
    /^PrivateTmp=no$/m,
    /^WantedBy=multi-user\.target$/m,
  ]) {
    t.regex(host, line);
  }
  t.notRegex(host, /^(PrivateNetwork|PrivatePIDs|ProtectProc|ProcSubset)=/m, 'nothing that hides /proc or the guests\' namespaces');
  t.regex(unit, /^Conflicts=sliceid-host\.service$/m);
  // The preset as systemd applies it (rpm's %post runs `systemctl preset`): the node unit
  // enabled, the host unit not.
  const preset = await run('systemctl', [`--root=${sroot}`, 'preset', 'sliceid.service', 'sliceid-host.service']);
  t.is(preset.code, 0, preset.stderr);
  // (The links name /usr/lib/... absolutely, so they dangle from here: lstat, not exists.)
  const linked = (unit: string): boolean => fs.lstatSync(path.join(sroot, 'etc/systemd/system/multi-user.target.wants', unit), { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  t.true(linked('sliceid.service'), 'sliceid.service enabled by the preset');
  t.false(linked('sliceid-host.service'), 'sliceid-host.service not enabled');
  t.is((await run('systemctl', [`--root=${sroot}`, 'is-enabled', 'sliceid-host.service'])).stdout.trim(), 'disabled');
  // The hooks' unit: a oneshot the daemon starts, without the daemon's sandbox, never enabled.
  const hooks = fs.readFileSync(path.join(root, 'usr/lib/systemd/system/sliceid-hooks.service'), 'utf8');
  t.regex(hooks, /^Type=oneshot$/m);
  t.regex(hooks, /^ExecStart=\/usr\/bin\/sliceid hooks exec$/m);
  t.notRegex(hooks, /^(ProtectSystem|NoNewPrivileges|ReadWritePaths|RestrictSUIDSGID|PrivateTmp)=/m, 'no sandbox');
  t.notRegex(hooks, /^\[Install\]/m, 'static: started by the daemon only');
  t.regex(fs.readFileSync(path.join(root, 'usr/lib/systemd/system-preset/80-sliceid.preset'), 'utf8'), /^enable sliceid\.service$/m);
  t.regex(fs.readFileSync(path.join(root, 'usr/lib/systemd/system-preset/80-sliceid.preset'), 'utf8'), /^disable sliceid-host\.service$/m);
});

test.serial('rpmlint: every remaining warning and error is explained in packaging/README-rpm.md', async (t) => {
  const res = await run('rpmlint', [bundled.file, path.join(projectDir, 'rpm.spec')], { timeoutMs: 300_000 });
  const readme = fs.readFileSync(path.join(projectDir, 'packaging/README-rpm.md'), 'utf8');
  const found = new Set<string>();
  for (const line of res.stdout.split('\n')) {
    const m = /^\S+?(?::\d+)?: ([WE]): (\S+)/.exec(line);
    if (m) found.add(m[2]!);
  }
  t.log(`rpmlint reports: ${[...found].sort().join(', ') || 'nothing'}`);
  const unexplained = [...found].filter((id) => !readme.includes(`\`${id}\``));
  t.deepEqual(unexplained, [], 'each rpmlint check id appears in README-rpm.md');
});

// The scriptlets for real: rpm runs them chrooted into a scratch root that has a static busybox as
// its /bin/sh and tools, and a stub chkconfig or systemctl that logs its arguments. The sysconfig
// file, which the initscript sources, logs each initscript action the same way.
async function chrootRoot(kind: 'sysv' | 'systemd', systemdRunning = false): Promise<string> {
  const s = tempDir('sliceid-chroot-');
  for (const d of ['bin', 'sbin', 'usr/bin', 'var/tmp', 'var/log', 'tmp', 'dev', 'etc/sysconfig']) fs.mkdirSync(path.join(s, d), { recursive: true });
  await must('mknod', ['-m', '666', path.join(s, 'dev/null'), 'c', '1', '3']);
  fs.copyFileSync('/bin/busybox', path.join(s, 'bin/busybox'));
  fs.chmodSync(path.join(s, 'bin/busybox'), 0o755);
  await must('chroot', [s, '/bin/busybox', '--install', '-s', '/bin']);
  const stub = kind === 'sysv' ? 'sbin/chkconfig' : 'usr/bin/systemctl';
  const name = path.basename(stub);
  fs.writeFileSync(path.join(s, stub), `#!/bin/sh\necho "${name} $*" >> /var/log/scriptlets.log\n`, { mode: 0o755 });
  if (systemdRunning) fs.mkdirSync(path.join(s, 'run/systemd/system'), { recursive: true });
  return s;
}

function scriptletLog(s: string): string[] {
  const file = path.join(s, 'var/log/scriptlets.log');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  fs.rmSync(file, { force: true });
  return lines;
}

test.serial('scriptlets on a SysV image: chkconfig --add; upgrade condrestarts only a running daemon; erase stops and deregisters', async (t) => {
  const s = await chrootRoot('sysv');
  const rpmIn = (...args: string[]) => must('rpm', ['--root', s, '--dbpath', '/var/lib/rpm', '--nodeps', ...args]);
  await rpmIn('-i', bundled.file);
  t.deepEqual(scriptletLog(s), ['chkconfig --add sliceid']);
  t.true(fs.existsSync(path.join(s, 'var/log/sliceid.log')), '%post creates the log file');
  t.is(fs.statSync(path.join(s, 'var/log/sliceid.log')).mode & 0o777, 0o640, 'the log is not world-readable');
  // Log each initscript action from the sysconfig it sources (a local edit: kept on upgrade).
  fs.appendFileSync(path.join(s, 'etc/sysconfig/sliceid'), 'echo "initscript $1" >> /var/log/scriptlets.log\n');

  // Upgrade while stopped: condrestart finds nothing running and starts nothing.
  await rpmIn('-U', '--replacepkgs', bundled.file);
  t.deepEqual(scriptletLog(s), ['chkconfig --add sliceid', 'initscript condrestart']);
  t.is(fs.readFileSync(path.join(s, 'var/log/sliceid.log'), 'utf8'), '', 'no start attempted');
  t.regex(fs.readFileSync(path.join(s, 'etc/sysconfig/sliceid'), 'utf8'), /initscript \$1/, 'edited sysconfig kept (noreplace)');

  // Upgrade while "running" (subsys lock): condrestart restarts it. (The chroot has no C library,
  // so the start itself fails; its attempt is in the log.)
  fs.mkdirSync(path.join(s, 'var/lock/subsys'), { recursive: true });
  fs.writeFileSync(path.join(s, 'var/lock/subsys/sliceid'), '');
  await rpmIn('-U', '--replacepkgs', bundled.file);
  t.deepEqual(scriptletLog(s), ['chkconfig --add sliceid', 'initscript condrestart']);
  t.regex(fs.readFileSync(path.join(s, 'var/log/sliceid.log'), 'utf8'), /runtime\/bin\/node/, 'a start was attempted');

  // Erase: stop, deregister; the daemon's own files go (%ghost), its state stays.
  fs.writeFileSync(path.join(s, 'etc/slicename'), 'wlab_radio');
  fs.writeFileSync(path.join(s, 'var/lib/sliceid/cache.db'), 'state');
  await rpmIn('-e', 'sliceid');
  t.deepEqual(scriptletLog(s), ['initscript stop', 'chkconfig --del sliceid']);
  t.false(fs.existsSync(path.join(s, 'usr/lib/sliceid')));
  t.false(fs.existsSync(path.join(s, 'etc/slicename')), '%ghost /etc/slicename removed');
  t.true(fs.existsSync(path.join(s, 'var/lib/sliceid/cache.db')), 'state kept');
  t.true(fs.existsSync(path.join(s, 'etc/sysconfig/sliceid.rpmsave')), 'edited sysconfig saved');
});

for (const running of [false, true]) {
  test.serial(`scriptlets on a systemd image (${running ? 'systemd running' : 'image build, systemd not running'}): preset, try-restart, disable`, async (t) => {
    const s = await chrootRoot('systemd', running);
    const rpmIn = (...args: string[]) => must('rpm', ['--root', s, '--dbpath', '/var/lib/rpm', '--nodeps', ...args]);
    await rpmIn('-i', bundled.file);
    t.deepEqual(scriptletLog(s), ['systemctl daemon-reload', 'systemctl --no-reload preset sliceid.service sliceid-host.service']);
    await rpmIn('-U', '--replacepkgs', bundled.file);
    t.deepEqual(scriptletLog(s), ['systemctl daemon-reload', 'systemctl daemon-reload', ...(running ? ['systemctl try-restart sliceid.service sliceid-host.service'] : [])]);
    await rpmIn('-e', 'sliceid');
    t.deepEqual(scriptletLog(s), [
      'systemctl --no-reload disable sliceid.service sliceid-host.service',
      ...(running ? ['systemctl stop sliceid.service sliceid-host.service'] : []),
      'systemctl daemon-reload',
    ]);
  });
}

test.serial('SLICEID_RUNTIME=system: a package for the system nodejs that runs on this machine', async (t) => {
  const started = Date.now();
  const out = await must('sh', ['packaging/build-rpm.sh'], { env: { ...process.env, SLICEID_RUNTIME: 'system', SLICEID_SKIP_BUILD: '1' }, timeoutMs: 15 * 60_000 });
  const file = path.join(projectDir, out.trim().split('\n').pop()!);
  t.log(`${path.basename(file)}: ${(fs.statSync(file).size / 1048576).toFixed(1)} MiB, built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.is(path.basename(file), `sliceid-${pkg.version}-1.sysnode.x86_64.rpm`);
  const requires = await must('rpm', ['-qpR', file]);
  t.regex(requires, /^\(nodejs\(abi20\) or nodejs\(abi22\) or nodejs\(abi24\)\)$/m);
  t.regex(requires, /^nodejs\(engine\) >= 20\.19$/m);
  const list = (await must('rpm', ['-qlp', file])).split('\n');
  t.false(list.some((f) => f.startsWith('/usr/lib/sliceid/runtime')), 'no bundled runtime');
  for (const abi of ['115', '127', '137']) {
    t.true(list.includes(`/usr/lib/sliceid/node_modules/better-sqlite3/lib/binding/node-v${abi}-linux-x64/better_sqlite3.node`), `addon for ABI ${abi}`);
  }
  const r = copyTree(primary.source);
  await must('rpm', ['--root', r, '--dbpath', '/var/lib/rpm', '-i', '--nodeps', '--noscripts', file]);
  // This machine's node (20.x) from PATH runs it.
  const nodeDir = path.dirname(process.execPath);
  const env = { PATH: `${nodeDir}:/usr/bin:/bin`, SLICEID_NODE: '' };
  const res = await run(path.join(r, 'usr/bin/sliceid'), ['once', '--root', r], { env });
  t.is(res.code, 0, res.stderr);
  t.is(fs.readFileSync(path.join(r, 'etc/slicename'), 'utf8'), primary.expected.slicename);
  const d = await startInstalledRun(path.join(r, 'usr/bin/sliceid'), r, env);
  const keys = await pyGetSshKeys(d.ready['port'] as number, d.ready['socket'] as string);
  t.deepEqual(keys.tcp, primary.expected.GetSSHKeys);
  d.proc.kill('SIGTERM');
  t.is(await d.exited, 0);
});
