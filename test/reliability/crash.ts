// Part 3, crash safety: kill -9 at random moments during refreshes that rewrite /etc/slicename,
// /etc/slice.gid and the key cache. The nickname and the accounts file alternate, so every refresh
// has files and rows to rewrite; the kill comes 0-300 ms after the change (and, every other time,
// a SIGHUP that starts the refresh at once).
// After each kill: the three files parse and verify, the database opens and passes
// integrity_check; after the restart: the files agree with the node's data and GetSSHKeys serves
// the keys of the current accounts file (never fewer than the baseline).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import type { RunningDaemon } from '../helpers/daemon.js';
import { copyTree, tempDir } from '../helpers/fixtures.js';
import {
  alive, checkGidFile, delay, GET_SSH_KEYS, keysOfReply, kill9, launch, newResult, pnodeFixture, postRaw, prng,
  projectGidChecker, stopDaemon, tempFilesIn, totalKeys, type PartOptions, type PartResult,
} from './common.js';

/**
 * Every private key in the state directory's gid/ folder matches its certificate (<name>.key and
 * <name>.pem), and the leaf of /etc/slice.gid and /etc/node.gid carries the public half of
 * gid/slice.key and gid/node.key. Returns what does not match (empty when all do, or when the
 * layout is not there).
 */
function keyMismatches(root: string): string[] {
  const gidDir = path.join(root, 'var/lib/sliceid/gid');
  const out: string[] = [];
  const spki = (k: crypto.KeyObject): string => k.export({ type: 'spki', format: 'der' }).toString('base64');
  const keyOf = (file: string): string | undefined => {
    try {
      return spki(crypto.createPublicKey(crypto.createPrivateKey(fs.readFileSync(file))));
    } catch {
      return undefined;
    }
  };
  const certKeyOf = (file: string): string | undefined => {
    try {
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(fs.readFileSync(file, 'utf8'))?.[0];
      return pem ? spki(new crypto.X509Certificate(pem).publicKey) : undefined;
    } catch {
      return undefined;
    }
  };
  if (!fs.existsSync(gidDir)) return out;
  for (const f of fs.readdirSync(gidDir).filter((x) => x.endsWith('.key'))) {
    const pem = path.join(gidDir, f.replace(/\.key$/, '.pem'));
    if (fs.existsSync(pem) && keyOf(path.join(gidDir, f)) !== certKeyOf(pem)) out.push(`gid/${f} does not match gid/${path.basename(pem)}`);
  }
  for (const [gid, key] of [['slice.gid', 'slice.key'], ['node.gid', 'node.key']]) {
    const k = path.join(gidDir, key!);
    if (fs.existsSync(k) && keyOf(k) !== certKeyOf(path.join(root, 'etc', gid!))) out.push(`/etc/${gid} does not carry the public half of gid/${key}`);
  }
  return out;
}

/** strace's syscall sets for the precise kills. */
const SYSCALLS: Record<string, string> = {
  rename: 'rename,renameat,renameat2',
  fsync: 'fsync,fdatasync',
  pwrite64: 'pwrite64',
  write: 'write',
};

// RSA: GetSSHKeys lists only the types PlanetLab served (ssh-rsa, ssh-dss) by default.
const EXTRA_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCpHsQfJodQbz+7M/nu9PqfBawp+S8Qfy3cHsVWVHxGWxCRAqsV/KdbcXN/tABgE1rJchDsb5cePvBjnYEV5VVuXt/dI6ty14Kx1Dpxger3CbISALFljSuFeXeYUBEBXqyfmkJIz1hekkOdZbyt8iT7nN6SUBJfnMj/qeiyc7AZrBwqp7xKaOpVILpTRIMrmEjyw9JsPtnANm9PJslhzXX8xNfcc6IDoNTWXIRLna/mBStnaL6q6swFoXj0Utdo8YYV16YRFPBPLXc5lSZvGvdr+8TNNzCqgYgrHPxe25IrEFZ6L7dN/s8hblmYRj2QPlpG3Ln2uJvym5AzbHn8q97H kim@crash';

export async function run({ quick, log }: PartOptions): Promise<PartResult> {
  const result = newResult();
  const kills = quick ? 15 : 50;
  const seed = Number(process.env['SLICEID_CRASH_SEED'] ?? Date.now() % 2 ** 31);
  const rand = prng(seed);
  log(`seed ${seed} (SLICEID_CRASH_SEED=${seed} replays the delays)`);

  const root = copyTree(pnodeFixture);
  const scratch = tempDir('sliceid-crash-');
  const etc = path.join(root, 'etc');
  const state = path.join(root, 'var/lib/sliceid');
  const nicknameFile = path.join(root, 'var/emulab/boot/nickname');
  const accountsFile = path.join(root, 'var/emulab/boot/tmcc/accounts');
  const domain = fs.readFileSync(path.join(root, 'var/emulab/boot/mydomain'), 'utf8').trim();
  const accountsX = fs.readFileSync(accountsFile, 'utf8');
  const accountsY = `${accountsX.trimEnd()}\nADDUSER LOGIN=kim PSWD=* UID=10509 GID=6200 ROOT=0 NAME="Kim" HOMEDIR=/users/kim GLIST="" SERIAL=1500000009 EMAIL="kim@uni.example" SHELL=bash\nPUBKEY LOGIN=kim KEY="${EXTRA_KEY}"\n`;
  const [vname, , pid] = fs.readFileSync(nicknameFile, 'utf8').trim().split('.') as [string, string, string];
  const variants = [
    { nickname: `${vname}.radio.${pid}\n`, slicename: `${pid}_radio`, urn: `urn:publicid:IDN+${domain}:${pid}+slice+radio` },
    { nickname: `${vname}.radio2.${pid}\n`, slicename: `${pid}_radio2`, urn: `urn:publicid:IDN+${domain}:${pid}+slice+radio2` },
  ];
  const projectCheck = await projectGidChecker();
  const names = new Set(variants.map((v) => v.slicename));
  const urns = new Set(variants.map((v) => v.urn));

  const c = {
    kills: 0, renameKills: 0, beforeRefreshDone: 0, midRefreshAfterWrite: 0, afterRefreshDone: 0, brokenFiles: 0, badSlicename: 0, dbErrors: 0, dbFewer: 0,
    restartFailures: 0, fewerKeys: 0, wrongKeys: 0, inconsistentAfterRestart: 0, nodeGidChanged: 0, splitAtKill: 0,
    tempAfterKill: 0, tempAfterRestart: 0, keyMismatchAfterKill: 0, keyMismatchAfterRestart: 0, precise: 0, preciseMissed: 0, restartMs: [] as number[],
  };
  const problems: string[] = [];
  const note = (s: string): void => void (problems.length < 30 && problems.push(s));

  let current = { variant: 0, accounts: 0 };
  let d: RunningDaemon | undefined;
  let baseline = 0;
  let nodeGid: Buffer | undefined;

  /** Start (or restart) and check the node's state as the restarted daemon leaves it. */
  const restartAndCheck = async (after: string): Promise<boolean> => {
    const t = Date.now();
    try {
      d = await launch(root, [], 30_000);
    } catch (err) {
      c.restartFailures++;
      note(`${after}: the daemon did not come up: ${(err as Error).message.slice(0, 400)}`);
      return false;
    }
    c.restartMs.push(Date.now() - t);
    const want = variants[current.variant]!;
    const wantKeys = current.accounts === 0 ? baseline : baseline + 1;
    let served: number;
    try {
      const ask = async (): Promise<number> => totalKeys(keysOfReply((await postRaw({ port: d!.port }, GET_SSH_KEYS, { timeoutMs: 5000 })).body));
      served = await ask();
      // A file that now holds fewer keys than the cache is applied only once it has stayed so for
      // the daemon's shrink settle time (2 s): until then the last good (larger) set is served.
      const settleBy = Date.now() + 6000;
      while (served > wantKeys && Date.now() < settleBy) {
        await new Promise((r) => setTimeout(r, 100));
        const now = await ask();
        if (baseline && now < baseline) {
          served = now;
          break;
        }
        served = now;
      }
    } catch (err) {
      c.fewerKeys++;
      note(`${after}: GetSSHKeys failed after the restart: ${(err as Error).message}`);
      return true;
    }
    if (baseline && served < baseline) {
      c.fewerKeys++;
      note(`${after}: ${served} keys served after the restart, baseline ${baseline}`);
    } else if (baseline && served !== wantKeys) {
      c.wrongKeys++;
      note(`${after}: ${served} keys served after the restart, the accounts file holds ${wantKeys}`);
    }
    const name = fs.readFileSync(path.join(etc, 'slicename'), 'utf8');
    const slice = checkGidFile(path.join(etc, 'slice.gid'), scratch);
    if (name !== want.slicename || !slice.ok || slice.urn !== want.urn) {
      c.inconsistentAfterRestart++;
      note(`${after}: after the restart slicename ${JSON.stringify(name)}, slice.gid ${slice.ok ? slice.urn : slice.why}; nickname says ${want.slicename}`);
    }
    const nodeNow = fs.readFileSync(path.join(etc, 'node.gid'));
    if (nodeGid && !nodeNow.equals(nodeGid)) {
      c.nodeGidChanged++;
      note(`${after}: node.gid was re-issued (the node URN never changed)`);
      nodeGid = nodeNow;
    }
    nodeGid ??= nodeNow;
    const tmps = [...tempFilesIn(etc), ...tempFilesIn(state).map((f) => `state/${f}`), ...tempFilesIn(path.join(state, 'gid')).map((f) => `state/gid/${f}`)];
    if (tmps.length) c.tempAfterRestart++;
    const mismatch = keyMismatches(root);
    if (mismatch.length) {
      c.keyMismatchAfterRestart++;
      note(`${after}: after the restart ${mismatch.join('; ')}`);
    }
    return true;
  };

  /** The node's state while no daemon runs: files, leftovers, database. */
  const checkDead = (label: string): void => {
    let broken = false;
    let name = '';
    try {
      name = fs.readFileSync(path.join(etc, 'slicename'), 'utf8');
    } catch (err) {
      name = `<${(err as NodeJS.ErrnoException).code}>`;
    }
    if (!names.has(name)) {
      c.badSlicename++;
      broken = true;
      note(`${label}: /etc/slicename is ${JSON.stringify(name.slice(0, 80))}`);
    }
    let sliceUrn: string | undefined;
    for (const f of ['slice.gid', 'node.gid']) {
      const file = path.join(etc, f);
      const r = checkGidFile(file, scratch);
      if (!r.ok) {
        broken = true;
        note(`${label}: ${f}: ${r.why}`);
        continue;
      }
      if (f === 'slice.gid') {
        sliceUrn = r.urn;
        if (!r.urn || !urns.has(r.urn)) {
          broken = true;
          note(`${label}: slice.gid URN ${r.urn}`);
        }
      }
      const own = projectCheck?.(fs.readFileSync(file, 'utf8'));
      if (own) {
        broken = true;
        note(`${label}: ${f}: project parser: ${own}`);
      }
    }
    if (broken) c.brokenFiles++;
    else if (variants.find((v) => v.slicename === name)?.urn !== sliceUrn) c.splitAtKill++;
    if (tempFilesIn(etc).length || tempFilesIn(state).length || tempFilesIn(path.join(state, 'gid')).length) c.tempAfterKill++;
    if (keyMismatches(root).length) c.keyMismatchAfterKill++;
    try {
      const db = new Database(path.join(state, 'cache.db'), { fileMustExist: true });
      try {
        const check = db.pragma('integrity_check', { simple: true });
        if (check !== 'ok') throw new Error(`integrity_check: ${String(check)}`);
        const keys = (db.prepare('SELECT count(DISTINCT text) AS n FROM keys').get() as { n: number }).n;
        if (keys < baseline) {
          c.dbFewer++;
          note(`${label}: the database holds ${keys} distinct keys, baseline ${baseline}`);
        }
      } finally {
        db.close();
      }
    } catch (err) {
      c.dbErrors++;
      note(`${label}: the database: ${(err as Error).message}`);
    }
  };

  try {
    if (!(await restartAndCheck('first start'))) throw new Error(problems.join('; '));
    baseline = totalKeys(keysOfReply((await postRaw({ port: d!.port }, GET_SSH_KEYS)).body));
    // Time the refreshes (SIGHUP starts them at once, whatever the watcher does): from the SIGHUP
    // to the "refresh" line. A new slice name issues a slice GID (an RSA key) the first time;
    // switching back to a known one re-uses it. A new accounts file only rewrites the cache.
    const timeRefresh = async (change: () => void): Promise<number> => {
      const from = d!.logs.length;
      change();
      const at = Date.now();
      d!.proc.kill('SIGHUP');
      const l = await d!.waitForLog((x) => x.msg === 'refresh' && String(x['trigger']).includes('SIGHUP'), 15_000, from);
      return Number(l['time']) - at;
    };
    const keyMs = await timeRefresh(() => {
      fs.writeFileSync(accountsFile, accountsY);
      current.accounts = 1;
    });
    const newNameMs = await timeRefresh(() => {
      fs.writeFileSync(nicknameFile, variants[1]!.nickname);
      current.variant = 1;
    });
    const knownNameMs = await timeRefresh(() => {
      fs.writeFileSync(nicknameFile, variants[0]!.nickname);
      current.variant = 0;
    });
    // Kill moments for renames: uniform over 1.5 x the median time a rename refresh has taken to
    // end (kept up to date from the refreshes seen ending); for key-only changes 0-300 ms.
    const renameEnds = [knownNameMs];
    const renameWindow = (): number => {
      const s = [...renameEnds].sort((x, y) => x - y);
      return Math.max(20, Math.ceil(1.5 * s[Math.floor(s.length / 2)]!));
    };
    log(`baseline ${baseline} keys; SIGHUP to end of refresh: ${keyMs} ms for a new accounts file, ${newNameMs} ms for a new slice name, ${knownNameMs} ms for a known one`);
    const started = Date.now();
    for (let i = 1; i <= kills; i++) {
      const label = `kill ${i}`;
      if (!d || !alive(d)) break;
      const from = d.logs.length;
      // Two kills in three change the slice name (files + cache), one in three only the keys.
      const renames = i % 3 !== 0;
      const oldName = fs.readFileSync(path.join(etc, 'slicename'), 'utf8');
      const oldSliceGid = fs.readFileSync(path.join(etc, 'slice.gid'));
      current = { variant: renames ? 1 - current.variant : current.variant, accounts: 1 - current.accounts };
      if (renames) {
        fs.writeFileSync(nicknameFile, variants[current.variant]!.nickname);
        c.renameKills++;
      }
      fs.writeFileSync(accountsFile, current.accounts ? accountsY : accountsX);
      const window = renames ? renameWindow() : 300;
      const hupAt = Date.now();
      d.proc.kill('SIGHUP');
      await delay(Math.floor(rand() * (window + 1))); // the random kill moment, not a synchronisation
      const end = d.logs.slice(from).find((l) => l.msg === 'refresh');
      const refreshed = end !== undefined;
      if (end && renames) renameEnds.push(Number(end['time']) - hupAt);
      await kill9(d);
      c.kills++;
      const nameNow = fs.existsSync(path.join(etc, 'slicename')) ? fs.readFileSync(path.join(etc, 'slicename'), 'utf8') : '';
      if (refreshed) c.afterRefreshDone++;
      else if (renames && (nameNow !== oldName || !fs.readFileSync(path.join(etc, 'slice.gid')).equals(oldSliceGid))) c.midRefreshAfterWrite++;
      else c.beforeRefreshDone++;
      checkDead(label);
      if (!(await restartAndCheck(label))) break;
    }
    const seconds = (Date.now() - started) / 1000;

    // Precise kills: strace attached to the running daemon injects SIGKILL at the Nth rename,
    // fsync, pwrite64 (SQLite) or write of the next refresh: every step of the atomic writes and
    // of the cache's commit, not only where a random delay happens to land.
    const precise: Array<[string, number]> = quick
      ? [['rename', 1], ['rename', 2], ['rename', 4], ['rename', 5], ['fsync', 7], ['pwrite64', 3]]
      : [
          ...[1, 2, 3, 4, 5, 6].map((n): [string, number] => ['rename', n]),
          ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].map((n): [string, number] => ['fsync', n]),
          ...[1, 2, 3, 4, 6, 8, 12, 16, 20].map((n): [string, number] => ['pwrite64', n]),
          ...[2, 4, 6, 8, 10, 12].map((n): [string, number] => ['write', n]),
        ];
    const straceOk = spawnSync('strace', ['-V']).status === 0;
    const preciseStarted = Date.now();
    const missed: string[] = [];
    if (!straceOk) result.skipped.push('precise kills: strace is not installed (apt-get install strace)');
    for (const [sys, n] of straceOk ? precise : []) {
      if (!d || !alive(d)) break;
      const label = `kill at ${sys} #${n}`;
      const tracer = spawn('strace', ['-p', String(d.proc.pid), '-o', '/dev/null', '-e', `trace=${SYSCALLS[sys]}`, '-e', `inject=${SYSCALLS[sys]}:signal=SIGKILL:when=${n}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      const attached = new Promise<boolean>((resolve) => {
        tracer.stderr.on('data', (b: Buffer) => {
          err += b.toString();
          if (/attached/.test(err)) resolve(true);
        });
        tracer.once('exit', () => resolve(false));
        setTimeout(() => resolve(false), 5000).unref();
      });
      const tracerExit = new Promise<void>((resolve) => tracer.once('exit', () => resolve()));
      try {
        if (!(await attached)) {
          result.skipped.push(`precise kills: strace cannot attach here: ${err.trim().split('\n')[0] ?? ''}`);
          break;
        }
        current = { variant: 1 - current.variant, accounts: 1 - current.accounts };
        fs.writeFileSync(nicknameFile, variants[current.variant]!.nickname);
        fs.writeFileSync(accountsFile, current.accounts ? accountsY : accountsX);
        const dd = d;
        const died = new Promise<boolean>((resolve) => {
          if (!alive(dd)) return resolve(true);
          dd.proc.once('exit', () => resolve(true));
          setTimeout(() => resolve(false), 8000).unref();
        });
        dd.proc.kill('SIGHUP');
        if (!(await died)) {
          // The refresh made fewer such calls this time: nothing was killed; let it be.
          c.preciseMissed++;
          missed.push(`${sys} #${n}`);
          continue;
        }
      } finally {
        if (tracer.exitCode === null && tracer.signalCode === null) {
          tracer.kill('SIGTERM');
          await tracerExit;
        }
      }
      c.precise++;
      c.kills++;
      checkDead(label);
      if (!(await restartAndCheck(label))) break;
    }
    const preciseSeconds = (Date.now() - preciseStarted) / 1000;
    const ms = [...c.restartMs].sort((a, b) => a - b);
    result.figures.push(
      ['random kills', `${c.kills - c.precise} of ${kills} in ${seconds.toFixed(1)} s (${c.renameKills} during a slice rename, the rest during a key change)`],
      ['rename kill window at the end', `0-${renameWindow()} ms`],
      ['kill moments', `${c.beforeRefreshDone} before /etc was rewritten, ${c.midRefreshAfterWrite} after slice.gid or slicename was rewritten but before the refresh ended, ${c.afterRefreshDone} after the refresh ended`],
      ['precise kills (strace)', straceOk ? `${c.precise} of ${precise.length} in ${preciseSeconds.toFixed(1)} s${missed.length ? `; not reached (the refresh made fewer such calls): ${missed.join(', ')}` : ''}` : 'skipped'],
      ['broken identity files after a kill', `${c.brokenFiles} (slicename bad ${c.badSlicename})`],
      ['slicename and slice.gid of different slices after a kill (info: two files)', c.splitAtKill],
      ['database failed to open or integrity_check', c.dbErrors],
      ['database with fewer keys than the baseline', c.dbFewer],
      ['restarts that failed', c.restartFailures],
      ['restart time median / max', `${ms[Math.floor(ms.length / 2)] ?? '?'} ms / ${ms[ms.length - 1] ?? '?'} ms`],
      ['answers with fewer keys than the baseline after restart', c.fewerKeys],
      ['answers not matching the accounts file after restart', c.wrongKeys],
      ['files not matching the nickname after restart', c.inconsistentAfterRestart],
      ['node.gid re-issued', c.nodeGidChanged],
      ['state key not matching its certificate after a kill (info) / after the restart', `${c.keyMismatchAfterKill} / ${c.keyMismatchAfterRestart}`],
      ['temp files present after a kill / after the restart', `${c.tempAfterKill} / ${c.tempAfterRestart}`],
      ['GID checks', `openssl x509 + openssl verify${projectCheck ? ' + the project parser (dist/src/identity/gid.js)' : ''}`],
    );
    if (c.kills - c.precise < kills) result.failures.push(`only ${c.kills - c.precise} of ${kills} random kills happened`);
    if (c.keyMismatchAfterRestart) result.failures.push(`${c.keyMismatchAfterRestart} restarts left a private key not matching its certificate`);
    if (c.brokenFiles) result.failures.push(`${c.brokenFiles} kills left a broken identity file`);
    if (c.dbErrors) result.failures.push(`${c.dbErrors} kills left a database that does not open or check`);
    if (c.dbFewer) result.failures.push(`${c.dbFewer} kills left fewer keys in the database than the baseline`);
    if (c.restartFailures) result.failures.push(`${c.restartFailures} restarts failed`);
    if (c.fewerKeys) result.failures.push(`${c.fewerKeys} restarts served fewer keys than the baseline`);
    if (c.wrongKeys) result.failures.push(`${c.wrongKeys} restarts served keys not matching the accounts file`);
    if (c.inconsistentAfterRestart) result.failures.push(`${c.inconsistentAfterRestart} restarts left files not matching the node's data`);
    if (c.nodeGidChanged) result.failures.push(`node.gid was re-issued ${c.nodeGidChanged} times though the node URN never changed`);
    if (c.tempAfterRestart) {
      const left = [...tempFilesIn(etc), ...tempFilesIn(state).map((f) => `var/lib/sliceid/${f}`)];
      result.notes.push(`temp files from interrupted writes are not cleaned up at start (${left.length} now: ${left.slice(0, 4).join(', ')}${left.length > 4 ? ', ...' : ''}); harmless to readers, but they accumulate`);
    }
    for (const p of problems.slice(0, 12)) result.notes.push(p);
    if (d && alive(d)) {
      const how = await stopDaemon(d);
      if (how !== '0') result.notes.push(`SIGTERM at the end: ${how}`);
    }
  } finally {
    if (d && alive(d)) await kill9(d);
  }
  return result;
}
