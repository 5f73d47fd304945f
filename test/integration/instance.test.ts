// One daemon per root (issue 25, point 6): the instance lock on the state directory decides "is it
// running?" for run, status, refresh, hooks and clean; a pidfile is never trusted for it.
import test from 'ava';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { getSshKeys, runCli, startDaemon, until } from '../helpers/daemon.js';
import { LOCK_NAME } from '../../src/fs/lock.js';

/** Every path below root with its bytes' hash, mode and mtime (what a second daemon must not change). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort()) {
    const st = fs.lstatSync(path.join(root, rel));
    const hash = st.isFile() && path.basename(rel) !== LOCK_NAME ? crypto.createHash('sha256').update(fs.readFileSync(path.join(root, rel))).digest('hex') : '';
    out[rel] = `${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${hash}`;
  }
  return out;
}

/** pg-vnode with a geni-get that records each call before answering. */
function recordingTree(): { root: string; calls: () => string[] } {
  const root = copyTree(path.join(ownFixtures, 'pg-vnode'));
  const log = path.join(root, 'geni-get.calls');
  const real = path.join(root, 'usr/bin/geni-get.real');
  fs.renameSync(path.join(root, 'usr/bin/geni-get'), real);
  fs.writeFileSync(path.join(root, 'usr/bin/geni-get'), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  return { root, calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []) };
}

/** A live process that is not sliceid (what a stale pidfile may name after a reboot). */
function bystander(t: { teardown(fn: () => void): void }): { pid: number; alive(): boolean } {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  return {
    pid: child.pid!,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}

test.serial('a second `run` on the same root refuses at once, naming the running pid, having written and asked nothing', async (t) => {
  const { root, calls } = recordingTree();
  const d = await startDaemon(root);
  try {
    const expected = await getSshKeys(d.port);
    const before = snapshot(root);
    const asked = calls().length;
    t.true(asked >= 1, 'the first daemon asked geni-get');
    const started = Date.now();
    const second = await runCli(['run', '--root', root, '--port', '0']);
    const took = Date.now() - started;
    t.log(`second run refused after ${took} ms`);
    t.is(second.code, 1);
    t.is(second.stdout, '', 'not one log line');
    t.is(second.stderr, `sliceid: another sliceid daemon is running on ${root} (pid ${d.proc.pid}): it holds ${path.join(root, 'var/lib/sliceid', LOCK_NAME)}; nothing done\n`);
    t.true(took < 10_000, `took ${took} ms`);
    t.is(calls().length, asked, 'geni-get not asked');
    t.deepEqual(snapshot(root), before, 'no file written, touched or removed (faults file, pidfile, identity, state)');
    t.deepEqual(await getSshKeys(d.port), expected, 'the running daemon serves on');
  } finally {
    await d.stop();
  }
});

test.serial('a pidfile naming an unrelated process: refresh and hooks run signal nothing; status says not running; a new daemon starts', async (t) => {
  const { root } = recordingTree();
  let d = await startDaemon(root);
  await d.stop();
  const other = bystander(t);
  const pidFile = path.join(root, 'var/run/sliceid.pid');
  fs.writeFileSync(pidFile, `${other.pid}\n`);
  const refresh = await runCli(['refresh', '--root', root]);
  t.is(refresh.code, 1);
  t.regex(refresh.stderr, /no running daemon on .*nothing holds .*daemon\.lock.*nothing signalled/);
  const hooks = await runCli(['hooks', 'run', '--root', root]);
  t.is(hooks.code, 1);
  t.regex(hooks.stderr, /no running daemon on .*nothing signalled/);
  const status = await runCli(['status', '--root', root, '--json']);
  t.is(status.code, 3);
  t.deepEqual((JSON.parse(status.stdout) as { daemon: unknown }).daemon, { running: false });
  const pid = await runCli(['status', '--root', root, '--pid']);
  t.is(pid.code, 3);
  t.is(pid.stdout, '');
  t.true(other.alive(), 'the unrelated process was not signalled');
  // The daemon starts over the stale pidfile.
  d = await startDaemon(root);
  try {
    t.is(fs.readFileSync(pidFile, 'utf8').trim(), String(d.proc.pid));
  } finally {
    await d.stop();
  }
});

test.serial('with a daemon running, the lock names it whatever the pidfile says; kill -9 frees it at once', async (t) => {
  const { root } = recordingTree();
  const d = await startDaemon(root);
  const other = bystander(t);
  const pidFile = path.join(root, 'var/run/sliceid.pid');
  try {
    fs.writeFileSync(pidFile, `${other.pid}\n`);
    const pid = await runCli(['status', '--root', root, '--pid']);
    t.is(pid.code, 0, pid.stderr);
    t.is(pid.stdout, `${d.proc.pid}\n`);
    const from = d.logs.length;
    const refresh = await runCli(['refresh', '--root', root]);
    t.is(refresh.code, 0, refresh.stderr);
    t.regex(refresh.stdout, new RegExp(`pid ${d.proc.pid}\\b`));
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 10_000, from);
    t.true(other.alive(), 'the process the pidfile names was not signalled');
    const clean = await runCli(['clean', '--root', root, '--dry-run']);
    t.is(clean.code, 1);
    t.regex(clean.stderr, new RegExp(`the daemon is running \\(pid ${d.proc.pid}\\)`));
    const status = await runCli(['status', '--root', root, '--json']);
    t.like(JSON.parse(status.stdout), { daemon: { running: true, pid: d.proc.pid } });
  } finally {
    await d.stop('SIGKILL');
  }
  // Killed: the kernel dropped its lock; the pidfile it left names a dead process.
  const after = await until(async () => {
    const r = await runCli(['status', '--root', root, '--pid']);
    return r.code === 3 ? r : undefined;
  }, 10_000, 'status --pid to say not running');
  t.is(after.stdout, '');
  const next = await startDaemon(root);
  await next.stop();
  t.pass();
});
