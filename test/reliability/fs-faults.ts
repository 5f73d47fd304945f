// Part 4, file-system faults: /etc read-only, the state directory unwritable, a full disk (for
// /etc and for the state directory). For each: a refresh that must write (new nickname, new key)
// meets the fault; the previous files stay byte for byte, the daemon keeps serving at least the
// baseline keys, `sliceid status` reports a problem; once the fault is gone a SIGHUP brings the
// node up to date. Cases the machine cannot set up are skipped with the reason.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { RunningDaemon } from '../helpers/daemon.js';
import { runCli, until } from '../helpers/daemon.js';
import { copyTree } from '../helpers/fixtures.js';
import {
  alive, GET_SSH_KEYS, isMountPoint, keysOfReply, launch, mount, newResult, pnodeFixture, postRaw, stopDaemon, tempFilesIn,
  totalKeys, umount, kill9, type PartOptions, type PartResult,
} from './common.js';

// RSA: GetSSHKeys lists only the types PlanetLab served (ssh-rsa, ssh-dss) by default.
const NEW_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDCst5lCrVyJ6YqD7GpBobw0G/460s5NXeRPgS3B+A0L5FJnzC0GDY3tMXYw9Nzc9E9B9e/28Oq/S7ELJ9BOoDjK8FuvtcCG2orjSi/dDnkJYtE8YLIwXXJlc0cyk2NqGbC9RwvJUsaTxH8mQNsE7Bm8Uy6b4sO2ZGh5pR+ufBTb2ybqYKzP6K05bFQOGrob9UhZfeIV+vfnIkAD2sY/gnVCyJEUtbEhaF4+vj8HMmT7wFegXN2i01EVTjp3Fn0W4YREquyu6J4Sk/L2Cm+ngtF/nN6czxIAMY7cEuW1G8xXfQyVWYBnq+74d2huH0T7JYP92GA8adCdTvWb69ylwg/ faye@fault';
const ID_FILES = ['slicename', 'slice.gid', 'node.gid'];

interface Fault {
  how: string;
  undo(): void;
}

/** Make `dir` unwritable even for root: a read-only bind mount, else chattr +i. */
function readOnly(dir: string): Fault | { skip: string } {
  const bind = mount(['--bind', dir], dir);
  if (bind.ok) {
    const ro = mount(['-o', 'remount,ro,bind'], dir);
    if (ro.ok) {
      return { how: 'read-only bind mount', undo: () => umount(dir) };
    }
    umount(dir);
  }
  const ch = spawnSync('chattr', ['+i', dir], { encoding: 'utf8' });
  if (ch.status === 0) {
    return { how: 'chattr +i on the directory', undo: () => void spawnSync('chattr', ['-i', dir]) };
  }
  return { skip: `neither a read-only bind mount (${bind.ok ? 'remount refused' : bind.reason}) nor chattr +i (${(ch.stderr || ch.error?.message || '').trim()}) is allowed here` };
}

/** Fill the file system holding `dir` to the last byte; returns the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, '.filler');
  const fd = fs.openSync(filler, 'w');
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 0x78);
      for (let i = 0; i < 100_000; i++) {
        try {
          fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

function snapshot(etc: string): Map<string, Buffer | undefined> {
  return new Map(ID_FILES.map((f) => [f, fs.existsSync(path.join(etc, f)) ? fs.readFileSync(path.join(etc, f)) : undefined]));
}

interface CaseOutcome {
  readonly label: string;
  readonly how: string;
  readonly filesKept: boolean;
  readonly serving: string;
  readonly servingOk: boolean;
  readonly refreshSeen: string;
  readonly statusProblems: string[];
  readonly statusError: string | undefined;
  readonly recovered: boolean;
  readonly recoveryDetail: string;
  readonly alive: boolean;
  readonly tempLeft: string[];
}

export async function run({ log }: PartOptions): Promise<PartResult> {
  const result = newResult();
  const outcomes: CaseOutcome[] = [];

  /**
   * One case: `prepare` (before start, e.g. mount a tmpfs) and `inject` (on the running daemon)
   * make the fault; then the nickname and the accounts change; `clear` removes it.
   */
  const runCase = async (
    label: string,
    prepare: (root: string) => { ok: true; how?: string } | { skip: string },
    inject: (root: string) => Fault | { skip: string },
  ): Promise<void> => {
    const root = copyTree(pnodeFixture);
    const etc = path.join(root, 'etc');
    const prep = prepare(root);
    if ('skip' in prep) {
      result.skipped.push(`${label}: ${prep.skip}`);
      return;
    }
    let d: RunningDaemon | undefined;
    let fault: Fault | { skip: string } | undefined;
    try {
      d = await launch(root);
      const baseline = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
      const before = snapshot(etc);
      fault = inject(root);
      if ('skip' in fault) {
        result.skipped.push(`${label}: ${fault.skip}`);
        fault = undefined;
        return;
      }
      const how = [prep.how, fault.how].filter(Boolean).join(' + ');
      // A change that must write: a new slice name (files, slice key) and a new key (cache).
      const from = d.logs.length;
      fs.writeFileSync(path.join(root, 'var/emulab/boot/nickname'), 'node1.radio2.wlab\n');
      fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc/accounts'), `PUBKEY LOGIN=ben KEY="${NEW_KEY}"\n`);
      // SIGHUP as well: the refresh must not depend on the watcher being armed yet (see storm).
      d.proc.kill('SIGHUP');
      const seen = await d
        .waitForLog((l) => l.msg === 'refresh' || /refresh failed/.test(String(l.msg)), 8000, from)
        .then((l) => (l.msg === 'refresh' ? `refresh logged (written ${JSON.stringify(l['written'] ?? [])}, identityError ${JSON.stringify(l['identityError'] ?? null)})` : `"${l.msg}": ${String(l['err'] ?? '').split('\n')[0]}`))
        .catch((err: Error) => `no refresh logged within 8 s (${err.message.slice(0, 120)})`);
      const after = snapshot(etc);
      const changed = ID_FILES.filter((f) => {
        const a = before.get(f);
        const b = after.get(f);
        return !(a && b ? a.equals(b) : a === b);
      });
      let serving = '';
      let servingOk = false;
      try {
        const n = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS, { timeoutMs: 5000 })).body));
        serving = `${n} keys (baseline ${baseline})`;
        servingOk = n >= baseline;
      } catch (err) {
        serving = `GetSSHKeys failed: ${(err as Error).message.slice(0, 200)}`;
      }
      let statusProblems: string[] = [];
      let statusError: string | undefined;
      const st = await runCli(['status', '--root', root, '--json']);
      try {
        statusProblems = (JSON.parse(st.stdout) as { problems: string[] }).problems;
      } catch {
        statusError = `status exit ${st.code}: ${(st.stderr || st.stdout).trim().slice(0, 300)}`;
      }
      const tempLeft = tempFilesIn(etc);
      // Clear the fault; a SIGHUP must bring the node up to date.
      fault.undo();
      fault = undefined;
      if (fs.existsSync(path.join(etc, '.filler'))) fs.rmSync(path.join(etc, '.filler'));
      const stateFiller = path.join(root, 'var/lib/sliceid/.filler');
      if (fs.existsSync(stateFiller)) fs.rmSync(stateFiller);
      let recovered = false;
      let recoveryDetail = '';
      if (alive(d)) {
        d.proc.kill('SIGHUP');
        try {
          await until(async () => {
            const name = fs.readFileSync(path.join(etc, 'slicename'), 'utf8');
            const r = keysOfReply((await postRaw({ port: d!.port }, GET_SSH_KEYS, { timeoutMs: 3000 })).body);
            return name === 'wlab_radio2' && (r.get('wlab_radio2') ?? 0) === baseline + 1;
          }, 8000, 'the new slice name and key after the fault is cleared', 100);
          recovered = true;
          recoveryDetail = 'slice name wlab_radio2 and the new key served after SIGHUP';
        } catch {
          const name = fs.readFileSync(path.join(etc, 'slicename'), 'utf8');
          const r = await postRaw({ port: d.port }, GET_SSH_KEYS, { timeoutMs: 3000 }).then((x) => JSON.stringify(Object.fromEntries(keysOfReply(x.body)))).catch((e: Error) => e.message);
          recoveryDetail = `8 s after SIGHUP: slicename ${JSON.stringify(name)}, keys per slice ${r}`;
        }
      }
      outcomes.push({
        label, how, filesKept: changed.length === 0, serving, servingOk, refreshSeen: seen, statusProblems, statusError,
        recovered, recoveryDetail, alive: alive(d), tempLeft,
      });
      if (changed.length) result.notes.push(`${label}: changed under the fault: ${changed.join(', ')}`);
      await stopDaemon(d);
    } finally {
      if (fault && !('skip' in fault)) fault.undo();
      if (d && alive(d)) await kill9(d);
      for (const m of [path.join(root, 'etc'), path.join(root, 'var/lib/sliceid')]) while (isMountPoint(m)) umount(m);
    }
  };

  /** A small tmpfs at `rel` under the root, holding what the tree had there. */
  const tmpfsAt = (rel: string, size: string) => (root: string): { ok: true; how: string } | { skip: string } => {
    const dir = path.join(root, rel);
    fs.mkdirSync(dir, { recursive: true });
    const saved = fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))] as const);
    const m = mount(['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs'], dir);
    if (!m.ok) return { skip: `cannot mount a tmpfs here: ${m.reason}` };
    for (const [f, data] of saved) fs.writeFileSync(path.join(dir, f), data);
    return { ok: true, how: `tmpfs of ${size} at /${rel}` };
  };
  const nothing = (): { ok: true } => ({ ok: true });
  const filled = (rel: string) => (root: string): Fault => {
    const filler = fill(path.join(root, rel));
    return { how: `filled (${(fs.statSync(filler).size / 1024).toFixed(0)} KB filler)`, undo: () => fs.rmSync(filler, { force: true }) };
  };

  await runCase('/etc read-only', nothing, (root) => readOnly(path.join(root, 'etc')));
  await runCase('state directory unwritable', nothing, (root) => readOnly(path.join(root, 'var/lib/sliceid')));
  await runCase('/etc on a full disk', tmpfsAt('etc', '256k'), filled('etc'));
  await runCase('state directory on a full disk', tmpfsAt('var/lib/sliceid', '2m'), filled('var/lib/sliceid'));

  for (const o of outcomes) {
    log(`${o.label} (${o.how}): ${o.refreshSeen}`);
    result.figures.push(
      [`${o.label}: previous files kept`, o.filesKept ? 'yes' : 'NO'],
      [`${o.label}: serving`, o.serving],
      [`${o.label}: status problems`, o.statusError ?? (o.statusProblems.length ? o.statusProblems.map((p) => p.slice(0, 160)).join(' | ') : 'none')],
      [`${o.label}: after the fault is cleared`, o.recovered ? `recovered (${o.recoveryDetail})` : `NOT recovered: ${o.recoveryDetail}`],
    );
    if (o.tempLeft.length) result.notes.push(`${o.label}: temp files left in /etc: ${o.tempLeft.join(', ')}`);
    if (!o.alive) result.failures.push(`${o.label}: the daemon died`);
    if (!o.filesKept) result.failures.push(`${o.label}: the identity files changed under the fault`);
    if (!o.servingOk) result.failures.push(`${o.label}: not serving the last good keys: ${o.serving}`);
    if (o.statusError) result.failures.push(`${o.label}: status failed: ${o.statusError}`);
    else if (o.statusProblems.length === 0) result.failures.push(`${o.label}: status reports no problem`);
    if (!o.recovered) result.failures.push(`${o.label}: not up to date after the fault was cleared and SIGHUP: ${o.recoveryDetail}`);
  }
  result.figures.unshift(['cases run / skipped', `${outcomes.length} / ${result.skipped.length}`]);
  return result;
}
