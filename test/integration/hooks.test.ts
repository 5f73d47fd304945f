// Slice hooks and `sliceid wait` with the real daemon on copies of a fixture tree.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { spawn } from 'node:child_process';
import { startDaemon, getSshKeys, runCli, until, cliPath, type RunningDaemon, type LogLine } from '../helpers/daemon.js';
import { alive, writeHook } from '../hooks/helpers.js';

const pnode = path.join(ownFixtures, 'emulab-pnode');
const hooksDirOf = (root: string): string => path.join(root, 'etc/sliceid/slice.d');
const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

/** A hook that writes what it saw when it started: env, /etc/slicename, the slice GID's URN, the API's answer. */
function seenHook(root: string): string {
  return [
    '#!/bin/sh',
    `r=${root}`,
    'name=$(cat "$r/etc/slicename")',
    'gid=$(openssl x509 -in "$r/etc/slice.gid" -noout -ext subjectAltName 2>&1 | grep -c "URI:$SLICEID_SLICE_URN")',
    '[ -s "$r/etc/node.gid" ] && node=yes || node=no',
    `api=$(python3 -c 'import sys, xmlrpc.client as x; print(",".join(sorted(x.ServerProxy(sys.argv[1]).GetSSHKeys())))' "$SLICEID_API_URL" 2>&1 | tr -d '\\n')`,
    'echo "env=$SLICEID_SLICENAME file=$name slicegid=$gid nodegid=$node api=$api socket=$SLICEID_API_SOCKET" >> "$r/seen.log"',
    'echo "saw $name"',
  ].join('\n');
}

const hooksDone = (d: RunningDaemon, from = 0, ms = 30_000): Promise<LogLine> => d.waitForLog((l) => l.msg === 'hooks done', ms, from);

interface HooksJson {
  slices: Record<string, { slicename: string; hooks: Record<string, { outcome: string; exitCode?: number; hash: string }> }>;
  refused: Array<{ name: string; reason: string }>;
}
const hooksJson = async (root: string): Promise<HooksJson> => JSON.parse((await runCli(['hooks', '--root', root, '--json'])).stdout) as HooksJson;

test.serial('a hook runs once per slice with the files written and the API live; again when it changes and on a new slice; never again on a restart', async (t) => {
  const root = copyTree(pnode);
  writeHook(hooksDirOf(root), '10-seen', seenHook(root));
  const seen = path.join(root, 'seen.log');
  let d = await startDaemon(root);
  try {
    const done = await hooksDone(d);
    t.like(done, { slicename: 'wlab_radio', ran: 1, failed: 0 });
    t.deepEqual(lines(seen), [`env=wlab_radio file=wlab_radio slicegid=1 nodegid=yes api=wlab_radio socket=${d.socket}`]);
    t.true(d.logs.some((l) => l.msg === 'hook output' && l['hook'] === '10-seen' && l['line'] === 'saw wlab_radio'), 'its output is in the log');
    const ready = await runCli(['wait', '--root', root, '--timeout', '10']);
    t.is(ready.code, 0, ready.stderr);
    t.regex(ready.stdout, /sliceid is ready: slice wlab_radio/);
  } finally {
    await d.stop();
  }

  d = await startDaemon(root);
  try {
    t.like(await d.waitForLog((l) => l.msg === 'slice hooks: nothing to run', 30_000, 0), { slicename: 'wlab_radio' });
    t.is(lines(seen).length, 1, 'a restart runs nothing again');

    // A changed hook runs again, at once with `sliceid hooks run`.
    fs.appendFileSync(path.join(hooksDirOf(root), '10-seen'), '# changed\n');
    const from = d.logs.length;
    const asked = await runCli(['hooks', 'run', '--root', root]);
    t.is(asked.code, 0, asked.stderr);
    t.like(await hooksDone(d, from), { ran: 1 });
    t.is(lines(seen).length, 2);

    // A new slice (the experiment's name changed) runs it again, with the new identity in place.
    const from2 = d.logs.length;
    fs.writeFileSync(path.join(root, 'var/emulab/boot/nickname'), 'node1.other.wlab\n');
    t.like(await hooksDone(d, from2), { slicename: 'wlab_other', ran: 1 });
    t.is(lines(seen)[2], `env=wlab_other file=wlab_other slicegid=1 nodegid=yes api=wlab_other socket=${d.socket}`);
  } finally {
    await d.stop();
  }

  d = await startDaemon(root);
  try {
    t.like(await d.waitForLog((l) => l.msg === 'slice hooks: nothing to run', 30_000, 0), { slicename: 'wlab_other' });
    t.is(lines(seen).length, 3);
    const json = await hooksJson(root);
    t.deepEqual(Object.values(json.slices).map((s) => s.slicename).sort(), ['wlab_other', 'wlab_radio']);
    const listed = await runCli(['hooks', '--root', root]);
    t.regex(listed.stdout, /slice\s+wlab_other\s+urn:publicid:IDN\+emulab\.net:wlab\+slice\+other\s+\(current\)/);
    t.regex(listed.stdout, /10-seen\s+\S+Z\s+ok, exit 0\s+\d+ ms/);
  } finally {
    await d.stop();
  }
});

test.serial('time limit, a failing hook and a group-writable one: the API answers throughout, status names them, retried at the next start and by `hooks run`', async (t) => {
  const root = copyTree(pnode);
  const dir = hooksDirOf(root);
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), '[hooks]\ntimeout = 1\n');
  writeHook(dir, '10-slow', `sleep 60 & echo $! > ${root}/slow-child.pid\nwait`);
  writeHook(dir, '20-fail', `echo run >> ${root}/fail.count\n[ -e ${root}/fail.fixed ] || { echo "not yet" >&2; exit 3; }`);
  writeHook(dir, '30-gw', `touch ${root}/gw.ran`, 0o775);

  let d = await startDaemon(root);
  try {
    await d.waitForLog((l) => l.msg === 'hook start' && l['hook'] === '10-slow', 10_000, 0);
    t.deepEqual(Object.keys(await getSshKeys(d.port)), ['wlab_radio'], 'the API answers while a hook runs');
    const done = await hooksDone(d);
    t.like(done, { ran: 2, failed: 2, refused: 1 });
    const child = Number(fs.readFileSync(path.join(root, 'slow-child.pid'), 'utf8'));
    await until(() => !alive(child), 3000, "the slow hook's background child to be killed");
    t.false(fs.existsSync(path.join(root, 'gw.ran')), 'the group-writable hook did not run');
    t.is(lines(path.join(root, 'fail.count')).length, 1);
    const json = await hooksJson(root);
    const runs = json.slices['urn:publicid:IDN+emulab.net:wlab+slice+radio']!.hooks;
    t.like(runs['10-slow'], { outcome: 'timed-out' });
    t.like(runs['20-fail'], { outcome: 'failed', exitCode: 3 });
    t.is(runs['30-gw'], undefined);
    t.deepEqual(Object.keys(await getSshKeys(d.port)), ['wlab_radio'], 'the API still answers');

    const status = await runCli(['status', '--root', root]);
    t.is(status.code, 1);
    t.regex(status.stdout, /hook 10-slow timed-out, SIGTERM, killed at the time limit of 1 s/);
    t.regex(status.stdout, /hook 20-fail failed, exit 3 for wlab_radio/);
    t.regex(status.stdout, /hook 30-gw refused: \S+30-gw is group-writable \(mode 0775\)/);
    t.regex((await runCli(['hooks', '--root', root])).stdout, /30-gw\s+REFUSED/);
  } finally {
    await d.stop();
  }

  d = await startDaemon(root);
  try {
    t.like(await hooksDone(d), { ran: 2, failed: 2 });
    t.is(lines(path.join(root, 'fail.count')).length, 2, 'a failed hook is retried at the next start');
    // Fixed: `hooks run` retries at once; the slow hook is gone.
    fs.writeFileSync(path.join(root, 'fail.fixed'), '');
    fs.rmSync(path.join(dir, '10-slow'));
    fs.chmodSync(path.join(dir, '30-gw'), 0o755);
    const from = d.logs.length;
    t.is((await runCli(['hooks', 'run', '--root', root])).code, 0);
    t.like(await hooksDone(d, from), { ran: 2, failed: 0, refused: 0 });
    t.is(lines(path.join(root, 'fail.count')).length, 3);
    t.true(fs.existsSync(path.join(root, 'gw.ran')));
    const status = await runCli(['status', '--root', root]);
    t.notRegex(status.stdout, /hook /, status.stdout);
  } finally {
    await d.stop();
  }
  const noDaemon = await runCli(['hooks', 'run', '--root', root]);
  t.is(noDaemon.code, 1);
  t.regex(noDaemon.stderr, /no running daemon/);
});

test.serial('`sliceid wait` returns 0 as soon as the daemon is ready, and 1 at its timeout saying what is missing', async (t) => {
  const root = copyTree(pnode);
  const started = Date.now();
  const early = await runCli(['wait', '--root', root, '--timeout', '1']);
  const took = Date.now() - started;
  t.is(early.code, 1);
  t.regex(early.stderr, /not ready after 1 s: .*etc\/slicename is missing; .*etc\/slice\.gid is missing; .*etc\/node\.gid is missing; the daemon is not running/);
  t.true(took >= 1000 && took < 8000, `took ${took} ms`);

  // Started before the daemon: once it says it is waiting, only inotify can wake it.
  const waiting = spawn(process.execPath, [cliPath, 'wait', '--root', root, '--timeout', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  waiting.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const announced = new Promise<void>((resolve) => waiting.stderr.on('data', (b: Buffer) => ((stderr += b.toString()), stderr.includes('waiting for') && resolve())));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => waiting.on('close', (code) => resolve({ code, at: Date.now() })));
  await announced;
  t.regex(stderr, /waiting for: .*etc\/slicename is missing/);
  // Cheap while waiting: over 8 s its main thread is hardly woken and uses next to no CPU.
  const sample = (): { switches: number; ticks: number } => {
    const status = fs.readFileSync(`/proc/${waiting.pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${waiting.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const switches = [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { switches, ticks: Number(stat[11]) + Number(stat[12]) };
  };
  const before = sample();
  await new Promise((r) => setTimeout(r, 8000)); // the measurement window, not a synchronisation
  const after = sample();
  t.log(`while waiting 8 s: ${after.switches - before.switches} wake-ups, ${after.ticks - before.ticks} CPU ticks`);
  // A poll once a second or faster wakes it 8+ times; V8 may still finish one deferred task (a
  // GC) in the window, which costs a wake-up or two and at most a tick.
  t.true(after.switches - before.switches <= 5);
  t.true(after.ticks - before.ticks <= 1);
  const d = await startDaemon(root);
  try {
    const res = await exited;
    t.is(res.code, 0, stderr);
    t.regex(stdout, /sliceid is ready: slice wlab_radio, the API answers at /);
    const ready = d.logs.find((l) => l.msg === 'ready')!;
    t.log(`wait returned ${res.at - (ready['time'] as number)} ms after the daemon logged ready`);
    t.true(res.at >= (ready['time'] as number), 'not before the daemon was ready');
    t.true(res.at - (ready['time'] as number) < 5000);
  } finally {
    await d.stop();
  }
});

test.serial('a hook outlives the daemon: kill -9 mid-hook, it finishes and is recorded; the restarted daemon does not run it again; a dead runner\'s run shows as vanished', async (t) => {
  const root = copyTree(pnode);
  const dir = hooksDirOf(root);
  const count = path.join(root, 'long.count');
  writeHook(dir, '10-long', `echo start >> ${count}\necho $$ > ${root}/long.pid\nwhile [ ! -e ${root}/go ]; do sleep 0.1; done\necho done >> ${count}`);
  let d = await startDaemon(root);
  const hookPid = await until(() => (fs.existsSync(path.join(root, 'long.pid')) ? Number(fs.readFileSync(path.join(root, 'long.pid'), 'utf8')) : 0), 30_000, 'the hook to start');
  let json = await hooksJson(root);
  t.like(json.slices['urn:publicid:IDN+emulab.net:wlab+slice+radio']!.hooks['10-long'], { outcome: 'running' });
  t.regex((await runCli(['hooks', '--root', root])).stdout, /10-long\s+\S+Z\s+running, runner pid \d+/);
  d.proc.kill('SIGKILL');
  await d.stop().catch(() => undefined);
  t.true(alive(hookPid), 'the hook survived kill -9 of the daemon');
  d = await startDaemon(root);
  try {
    fs.writeFileSync(path.join(root, 'go'), '');
    await until(() => lines(count).length === 2, 30_000, 'the hook to finish');
    await until(async () => (await hooksJson(root)).slices['urn:publicid:IDN+emulab.net:wlab+slice+radio']!.hooks['10-long']!.outcome === 'ok', 30_000, 'its outcome recorded');
    t.deepEqual(lines(count), ['start', 'done'], 'ran exactly once');
    t.notRegex((await runCli(['status', '--root', root])).stdout, /hook 10-long/);
  } finally {
    await d.stop();
  }

  // The runner itself killed mid-hook (a machine reset, an OOM kill of the runner): vanished, not rerun.
  fs.rmSync(path.join(root, 'go'));
  fs.rmSync(path.join(root, 'long.pid'));
  fs.appendFileSync(path.join(dir, '10-long'), '# v2\n');
  d = await startDaemon(root);
  try {
    await until(() => fs.existsSync(path.join(root, 'long.pid')), 30_000, 'the changed hook to start');
    json = await hooksJson(root);
    const runner = (json as unknown as { runner: { pid: number } }).runner.pid;
    // As a machine reset would: the runner and the hook (a process group of its own) die.
    process.kill(-Number(fs.readFileSync(path.join(root, 'long.pid'), 'utf8')), 'SIGKILL');
    process.kill(runner, 'SIGKILL');
    await until(async () => !(await hooksJson(root) as unknown as { runner: { held: boolean } }).runner.held, 10_000, 'the runner gone');
    t.regex((await runCli(['hooks', '--root', root])).stdout, /10-long\s+\S+Z\s+vanished, its runner \(pid \d+\) ended while it ran/);
    const status = await runCli(['status', '--root', root]);
    t.regex(status.stdout, /hook 10-long vanished for wlab_radio .*sliceid hooks run --again/);
    // `hooks run` does not rerun it; `hooks run --again` does.
    const from = d.logs.length;
    t.is((await runCli(['hooks', 'run', '--root', root])).code, 0);
    t.like(await hooksDone(d, from), { ran: 0 });
    t.is(lines(count).length, 3, 'not rerun by itself');
    fs.writeFileSync(path.join(root, 'go'), '');
    const from2 = d.logs.length;
    const again = await runCli(['hooks', 'run', '--again', '--root', root]);
    t.regex(again.stdout, /forgot the vanished runs of 10-long/);
    t.like(await hooksDone(d, from2), { ran: 1, failed: 0 });
    t.is(lines(count).length, 5);
  } finally {
    await d.stop();
  }
});
