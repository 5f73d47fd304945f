// Slice hooks on a shared host (src/host/hooks.ts): the host daemon (the real CLI, `run --host`)
// runs the HOST's hooks once per guest slice through the detached runner (`hooks exec --guest`),
// each in the guest's network namespace with SLICEID_GUEST*; examples/slice.d/60-raven-guest
// installs a (fake) package with the guest's own "rpm" run inside the guest's namespaces; kill -9
// of the daemon while a hook runs neither kills it nor runs it twice; a restart reruns nothing.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { hooksRunner } from '../../src/hooks/lock.js';
import { readHookRecords } from '../../src/hooks/records.js';
import { GUEST_WHERE, guestPaths, guestRunnerTarget } from '../../src/host/hooks.js';
import { defaultConfig } from '../../src/config.js';
import { cliPath, runCli } from '../helpers/daemon.js';
import { projectDir } from '../helpers/fixtures.js';
import { guestTree, startGuest, waitFor } from './helpers.js';

const NAME = 'pcvm7-2';
const PACKAGE = 'fake raven rpm payload\n';

type Line = Record<string, unknown>;

interface HostDaemonProc {
  readonly proc: ChildProcess;
}

/** Every line logged by the daemons started here and by the runners they started (their stdout). */
const logs: Line[] = [];
const waitLog = (pred: (l: Line) => boolean, what: string, from = 0): Promise<void> => waitFor(what, () => logs.slice(from).some(pred), 20_000);

function startHost(root: string): HostDaemonProc {
  const proc = spawn(process.execPath, [cliPath, 'run', '--host', '--root', root, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  return { proc };
}

async function stopHost(d: HostDaemonProc, signal: NodeJS.Signals): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  const gone = new Promise((r) => d.proc.once('exit', r));
  d.proc.kill(signal);
  await gone;
}

const count = (file: string, needle: string): number => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l === needle).length : 0);

test.serial('the host runs its hooks once per guest slice, in the guest\'s netns; 60-raven-guest installs with the guest\'s own rpm inside the guest', async (t) => {
  // The guest: busybox, a "package tool" rpm that records its calls and stdin in the guest's /tmp
  // (a tmpfs of the guest's own mount namespace) and its installed state in /var/lib.
  const dir = guestTree('pg-vnode');
  for (const applet of ['sh', 'cat', 'hostname', 'touch']) fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'bin/rpm'),
    [
      '#!/bin/sh',
      'echo "args: $*" >> /tmp/rpm-calls',
      'echo "hostname: $(hostname)" >> /tmp/rpm-calls',
      'case "$1" in',
      '  -q) [ -e /var/lib/fake-raven ] && echo raven-1.0-1.noarch && exit 0; exit 1 ;;',
      '  -U) cat > /tmp/rpm-stdin; touch /var/lib/fake-raven ;;',
      'esac',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  // A hook in the guest's own tree: never run (only the host's hooks directory counts).
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-hooks-'));
  fs.mkdirSync(path.join(dir, 'etc/sliceid/slice.d'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/sliceid/slice.d/01-guest-own'), `#!/bin/sh\ntouch ${root}/guest-hook-ran\n`, { mode: 0o755 });
  const g = await startGuest(dir, { hostname: 'guesthooks' });

  // The host: its config (the process runner), its hooks directory.
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  fs.mkdirSync(path.join(root, 'etc/sliceid/slice.d'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), `[hooks]\nrunner = "process"\n\n[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "${NAME}"\npid = ${g.pid}\n`);
  const hook = (name: string, text: string): void => fs.writeFileSync(path.join(root, 'etc/sliceid/slice.d', name), text, { mode: 0o755 });
  // 10-env: its environment, its namespaces, and the guest's API as the hook reaches it.
  hook(
    '10-env',
    [
      '#!/bin/sh',
      `echo RUN >> ${out}/env-runs`,
      `env > ${out}/env`,
      `readlink /proc/self/ns/net > ${out}/netns`,
      `readlink /proc/self/ns/mnt > ${out}/mntns`,
      `python3 -c 'import os, xmlrpc.client; print(sorted(xmlrpc.client.ServerProxy(os.environ["SLICEID_API_URL"]).GetSSHKeys()))' > ${out}/api 2>&1`,
      '',
    ].join('\n'),
  );
  // 20-slow: runs until the test lets it go (the daemon is killed meanwhile).
  hook('20-slow', `#!/bin/sh\necho RUN >> ${out}/slow-runs\nwhile [ ! -e ${out}/go ]; do sleep 0.05; done\n`);
  const pkg = path.join(root, 'fake-raven.rpm');
  fs.writeFileSync(pkg, PACKAGE);
  const example = fs.readFileSync(path.join(projectDir, 'examples/slice.d/60-raven-guest'), 'utf8');
  t.is((example.match(/^RAVEN_SOURCE=""$/gm) ?? []).length, 1);
  hook('60-raven-guest', example.replace(/^RAVEN_SOURCE=""$/m, `RAVEN_SOURCE="${pkg}"`));

  const host = nodePaths(root);
  const gp = guestPaths(host, NAME);
  const records = () => readHookRecords(gp.hookRecords);
  const outcome = (hook: string): string | undefined => Object.values(records().slices)[0]?.hooks[hook]?.outcome;
  let daemon = startHost(root);
  t.teardown(async () => {
    fs.writeFileSync(path.join(out, 'go'), '');
    await stopHost(daemon, 'SIGKILL');
    const runner = hooksRunner(gp.stateDir);
    if (runner.held && runner.pid) await waitFor('the runner to end', () => !fs.existsSync(`/proc/${runner.pid}`));
    await g.kill();
  });

  await waitFor('10-env to run and 20-slow to start', () => outcome('10-env') === 'ok' && outcome('20-slow') === 'running' && count(path.join(out, 'slow-runs'), 'RUN') === 1, 30_000);
  const served = logs.find((l) => l.msg === 'guest served')!.time as number;
  const started = logs.find((l) => l.msg === 'hook start' && l['hook'] === '10-env')!.time as number;
  t.log(`first hook started ${started - served} ms after the guest was served`);
  const runnerPid = hooksRunner(gp.stateDir).pid;
  t.truthy(runnerPid);
  // kill -9 of the daemon while 20-slow runs: the runner (not its child) goes on.
  await stopHost(daemon, 'SIGKILL');
  t.true(fs.existsSync(`/proc/${runnerPid}`), 'the runner survives the daemon');
  let from = logs.length;
  daemon = startHost(root);
  await waitLog((l) => l.msg === 'host daemon serving', 'the restarted daemon', from);
  t.is(outcome('20-slow'), 'running', 'not started again while it runs');
  fs.writeFileSync(path.join(out, 'go'), '');
  await waitFor('every hook to run', () => outcome('20-slow') === 'ok' && outcome('60-raven-guest') === 'ok' && !hooksRunner(gp.stateDir).held, 30_000);
  t.is(count(path.join(out, 'slow-runs'), 'RUN'), 1, '20-slow ran exactly once');
  t.is(count(path.join(out, 'env-runs'), 'RUN'), 1);

  // The environment: today's variables plus the guest's; the guest's network namespace, the host's mounts.
  const env = Object.fromEntries(fs.readFileSync(path.join(out, 'env'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.is(env['SLICEID_GUEST'], NAME);
  t.is(env['SLICEID_GUEST_PID'], String(g.pid));
  t.is(env['SLICEID_GUEST_ROOT'], `/proc/${g.pid}/root`);
  t.is(env['SLICEID_SLICENAME'], 'labpg3_sl1');
  t.regex(env['SLICEID_SLICE_URN'] ?? '', /^urn:publicid:IDN\+.*\+slice\+sl1$/);
  t.is(env['SLICEID_API_URL'], 'http://127.0.0.1:812/');
  t.is(env['SLICEID_API_SOCKET'], '');
  t.is(fs.readFileSync(path.join(out, 'netns'), 'utf8').trim(), fs.readlinkSync(`/proc/${g.pid}/ns/net`));
  t.is(fs.readFileSync(path.join(out, 'mntns'), 'utf8').trim(), fs.readlinkSync('/proc/self/ns/mnt'), "the host's file system");
  t.is(fs.readFileSync(path.join(out, 'api'), 'utf8').trim(), "['labpg3_sl1']", 'the guest API answers the hook');

  // 60-raven-guest: the guest's rpm ran in the guest (its tmpfs /tmp, its host name), package on stdin.
  const calls = fs.readFileSync(`/proc/${g.pid}/root/tmp/rpm-calls`, 'utf8').trim().split('\n');
  t.deepEqual(calls, ['args: -q raven', 'hostname: guesthooks', 'args: -U --replacepkgs /dev/stdin', 'hostname: guesthooks', 'args: -q raven', 'hostname: guesthooks', 'args: -q raven', 'hostname: guesthooks']);
  t.is(fs.readFileSync(`/proc/${g.pid}/root/tmp/rpm-stdin`, 'utf8'), PACKAGE);
  t.false(fs.existsSync(path.join(dir, 'tmp/rpm-calls')), "written in the guest's own mount namespace only");
  t.true(fs.existsSync(path.join(dir, 'var/lib/fake-raven')));
  t.false(fs.existsSync(path.join(root, 'guest-hook-ran')), "the guest's own hooks directory is never run");
  t.false(fs.existsSync(path.join(root, 'var/lib/sliceid/hooks.json')), 'the host itself has no slice: no records of its own');

  // `sliceid hooks --guest` and `status --guest` tell it.
  const listed = await runCli(['hooks', '--guest', NAME, '--root', root, '--json']);
  t.is(listed.code, 0, listed.stderr);
  const report = JSON.parse(listed.stdout) as { pending: string[]; current: { slicename: string }; slices: Record<string, { hooks: Record<string, { outcome: string }> }> };
  t.deepEqual(report.pending, []);
  t.is(report.current.slicename, 'labpg3_sl1');
  t.deepEqual(Object.values(report.slices)[0]!.hooks['60-raven-guest']!.outcome, 'ok');
  const status = await runCli(['status', '--guest', NAME, '--root', root]);
  t.regex(status.stdout, /hooks: +3 run for this slice\n[\s\S]*- 10-env ok[\s\S]*- 20-slow ok[\s\S]*- 60-raven-guest ok/);

  // A restart runs nothing again; nor does `hooks run --again` (nothing vanished, nothing failed).
  await stopHost(daemon, 'SIGTERM');
  from = logs.length;
  daemon = startHost(root);
  await waitLog((l) => l.msg === 'slice hooks: nothing to run' && l['guest'] === NAME, 'the restarted daemon to find nothing to run', from);
  from = logs.length;
  const again = await runCli(['hooks', 'run', '--again', '--guest', NAME, '--root', root]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /for guest pcvm7-2/);
  await waitLog((l) => l.msg === 'slice hooks: starting their runner' && l['guest'] === NAME, 'the asked runner', from);
  await waitLog((l) => l.msg === 'hooks done' && l['guest'] === NAME, 'the asked runner to end', from);
  await waitFor('the runner lock to be free', () => !hooksRunner(gp.stateDir).held);
  t.is(logs.slice(from).filter((l) => l.msg === 'hook start').length, 0);
  t.is(count(path.join(out, 'env-runs'), 'RUN'), 1);
  t.is(count(path.join(out, 'slow-runs'), 'RUN'), 1);
  t.is(fs.readFileSync(`/proc/${g.pid}/root/tmp/rpm-calls`, 'utf8').trim().split('\n').filter((l) => l.startsWith('args: -U')).length, 1);
  t.true(logs.some((l) => l.msg === 'hook output' && l['hook'] === '60-raven-guest' && l['guest'] === NAME && /^60-raven-guest: installed raven-1\.0-1\.noarch in guest pcvm7-2 for slice labpg3_sl1$/.test(String(l['line']))));

  // A new slice in the guest (another experiment: its boot files say so; SIGHUP rereads them): its hooks run again.
  fs.writeFileSync(path.join(dir, 'var/emulab/boot/nickname'), 'node2.sl2.lab-PG3\n');
  from = logs.length;
  daemon.proc.kill('SIGHUP');
  await waitFor('the new slice\'s hooks to run', () => {
    const slice = Object.values(records().slices).find((sl) => sl.slicename === 'labpg3_sl2');
    return !!slice && ['10-env', '20-slow', '60-raven-guest'].every((h) => slice.hooks[h]?.outcome === 'ok') && !hooksRunner(gp.stateDir).held;
  }, 30_000);
  t.is(count(path.join(out, 'env-runs'), 'RUN'), 2);
  t.is(count(path.join(out, 'slow-runs'), 'RUN'), 2);
  t.regex(fs.readFileSync(path.join(out, 'env'), 'utf8'), /^SLICEID_SLICENAME=labpg3_sl2$/m);
  t.is(fs.readFileSync(`/proc/${g.pid}/root/tmp/rpm-calls`, 'utf8').trim().split('\n').filter((l) => l.startsWith('args: -U')).length, 1, 'installed already: not again');
  t.true(logs.slice(from).some((l) => l.msg === 'hook output' && /already installed in guest pcvm7-2; nothing to do for slice labpg3_sl2$/.test(String(l['line']))));

  // A runner killed while a hook runs (slice sl3): the run shows as vanished, is not rerun by
  // itself, and `hooks run --again --guest` runs it again.
  fs.rmSync(path.join(out, 'go'));
  fs.writeFileSync(path.join(dir, 'var/emulab/boot/nickname'), 'node2.sl3.lab-PG3\n');
  daemon.proc.kill('SIGHUP');
  const sl3 = (hook: string): string | undefined => Object.values(records().slices).find((sl) => sl.slicename === 'labpg3_sl3')?.hooks[hook]?.outcome;
  // (recorded as running just before it starts: its first line is waited for too)
  await waitFor('20-slow to run for sl3', () => sl3('20-slow') === 'running' && count(path.join(out, 'slow-runs'), 'RUN') === 3, 30_000);
  const killed = hooksRunner(gp.stateDir).pid!;
  process.kill(killed, 'SIGKILL');
  await waitFor('the killed runner to be gone', () => !hooksRunner(gp.stateDir).held);
  fs.writeFileSync(path.join(out, 'go'), '');
  const shown = await runCli(['hooks', '--guest', NAME, '--root', root]);
  t.regex(shown.stdout, /20-slow .*vanished/);
  t.is(sl3('60-raven-guest'), undefined, 'the pass ended with its runner');
  const rerun = await runCli(['hooks', 'run', '--again', '--guest', NAME, '--root', root]);
  t.is(rerun.code, 0, rerun.stderr);
  t.regex(rerun.stdout, /forgot the vanished runs of 20-slow for labpg3_sl3/);
  await waitFor('sl3\'s hooks to run', () => sl3('20-slow') === 'ok' && sl3('60-raven-guest') === 'ok' && !hooksRunner(gp.stateDir).held, 30_000);
  t.is(count(path.join(out, 'slow-runs'), 'RUN'), 4, 'sl1, sl2, sl3 (vanished), sl3 again');
  t.is(count(path.join(out, 'env-runs'), 'RUN'), 3);
});

test.serial('60-raven-guest outside a guest does nothing; without a guest process it installs nothing and says why', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const example = path.join(projectDir, 'examples/slice.d/60-raven-guest');
  t.is(spawnSync('sh', ['-n', example]).status, 0);
  const text = fs.readFileSync(example, 'utf8').replace(/^RAVEN_SOURCE=""$/m, 'RAVEN_SOURCE="/nonexistent/raven.rpm"');
  const hook = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'raven-guest-')), '60-raven-guest');
  fs.writeFileSync(hook, text, { mode: 0o755 });
  const outside = spawnSync('sh', [hook], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', SLICEID_SLICENAME: 'p_s' } });
  t.is(outside.status, 0);
  t.regex(outside.stdout, /not a shared host's guest/);
  const noPid = spawnSync('sh', [hook], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', SLICEID_GUEST: 'g1', SLICEID_GUEST_PID: '', SLICEID_GUEST_ROOT: '/vz/root/101' } });
  t.is(noPid.status, 1);
  t.regex(noPid.stderr, /no process of guest g1 is known.*NOT installed/);
  const raven50 = spawnSync('sh', [path.join(projectDir, 'examples/slice.d/50-raven')], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', SLICEID_GUEST: 'g1' } });
  t.is(raven50.status, 0, '50-raven leaves guests to 60-raven-guest');
  t.regex(raven50.stdout, /nothing to do on the host/);
});

test('the runner enters no guest that went away: another namespace, or its pid reused by another process', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-where-'));
  const host = nodePaths(root);
  const gp = guestPaths(host, 'g1');
  fs.mkdirSync(gp.stateDir, { recursive: true });
  const target = guestRunnerTarget(host, defaultConfig(), 'g1');
  t.regex(String(target.context()), /guest g1 has not been served by the host daemon yet/);
  const st = fs.statSync('/proc/self/ns/net');
  const where = { name: 'g1', netns: '/proc/self/ns/net', netnsId: `${st.dev}:${st.ino + 1}`, root: '/proc/self/root', apiUrl: 'http://127.0.0.1:812/' };
  fs.writeFileSync(path.join(gp.stateDir, GUEST_WHERE), JSON.stringify(where));
  t.regex(String(target.context()), /guest g1 is gone \(its network namespace \/proc\/self\/ns\/net is not the one served\)/);
  fs.writeFileSync(path.join(gp.stateDir, GUEST_WHERE), JSON.stringify({ ...where, netnsId: `${st.dev}:${st.ino}`, pid: process.pid, pidStart: '1' }));
  t.regex(String(target.context()), new RegExp(`guest g1 is gone \\(process ${process.pid} is not the guest's any more\\)`));
  fs.writeFileSync(path.join(gp.stateDir, GUEST_WHERE), JSON.stringify({ ...where, netnsId: `${st.dev}:${st.ino}` }));
  t.regex(String(target.context()), /guest g1 has no cache yet/, 'the guest is there: only its slice is missing');
  t.is(target.check?.(), undefined);
});
