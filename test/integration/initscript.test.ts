// The SysV initscript (packaging/sliceid.init) on a temp root, running this checkout's CLI: "is the
// daemon running?" is answered by the instance lock (`sliceid status --pid`), as for every other
// command. A pidfile naming another process, even one that looks like sliceid, is never signalled.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures, projectDir, tempDir } from '../helpers/fixtures.js';
import { jsonLines } from '../helpers/daemon.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test.serial('start waits for the ready daemon; status, stop and start follow the lock, not a pidfile naming a look-alike', async (t) => {
  const root = copyTree(path.join(ownFixtures, 'emulab-pnode'));
  const bin = path.join(tempDir(), 'sliceid');
  fs.writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${path.join(projectDir, 'bin', 'sliceid.js')}' "$@"\n`, { mode: 0o755 });
  const env = {
    PATH: process.env['PATH'],
    SLICEID_SYSCONFIG: path.join(root, 'etc/sysconfig/sliceid'),
    SLICEID_ROOT: root,
    SLICEID_BIN: bin,
    SLICEID_LOCKFILE: path.join(root, 'var/lock/subsys/sliceid'),
    SLICEID_LOGFILE: path.join(root, 'var/log/sliceid.log'),
    SLICEID_OPTIONS: '--port 0 --no-socket',
  };
  const sv = (action: string) => spawnSync('sh', [path.join(projectDir, 'packaging', 'sliceid.init'), action], { env, encoding: 'utf8', timeout: 90_000 });
  const pidFile = path.join(root, 'var/run/sliceid.pid');
  // A process whose command line says "sliceid" (what the old check grepped for) but is not it.
  const lookalike = spawn('sleep', ['300'], { argv0: 'sliceid', stdio: 'ignore' });
  t.teardown(() => lookalike.kill('SIGKILL'));
  try {
    const started = sv('start');
    t.is(started.status, 0, started.stdout + started.stderr);
    t.regex(started.stdout, /OK/);
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    t.true(jsonLines(fs.readFileSync(env.SLICEID_LOGFILE, 'utf8')).some((l) => l['msg'] === 'ready' && l['pid'] === pid), 'start returned after the ready line');
    for (const f of ['etc/slicename', 'etc/slice.gid', 'etc/node.gid']) t.true(fs.existsSync(path.join(root, f)), f);
    // The pidfile now names the look-alike: status and a second start still find the daemon.
    fs.writeFileSync(pidFile, `${lookalike.pid}\n`);
    const st = sv('status');
    t.is(st.status, 0);
    t.regex(st.stdout, new RegExp(`\\(pid ${pid}\\) is running`));
    const again = sv('start');
    t.is(again.status, 0);
    t.regex(again.stdout, new RegExp(`already running \\(pid ${pid}\\)`));
    const stopped = sv('stop');
    t.is(stopped.status, 0, stopped.stderr);
    t.false(alive(pid), 'the daemon stopped');
    t.true(alive(lookalike.pid!), 'the look-alike the pidfile named was not signalled');
    t.is(sv('status').status, 1, 'LSB: dead, but a pidfile exists (it names no daemon)');
  } finally {
    sv('stop');
  }
});
