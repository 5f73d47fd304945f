// Part 5, Emulab update storm: the tmcc cache directory is deleted and written again (as Emulab's
// updater does) hundreds of times, sometimes left missing or half-written for a while, while
// clients (TCP and the Unix socket) query GetSSHKeys without pause. On the NFS-style tree the
// user's authorized_keys is also rewritten through `.new` + rename.
// Goals: zero answers with fewer keys than the baseline, zero errors; the final answer is complete.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { copyTree } from '../helpers/fixtures.js';
import {
  alive, delay, GET_SSH_KEYS, keysOfReply, launch, newResult, nfsFixture, pnodeFixture, postRaw, prng, stopDaemon, totalKeys,
  type PartOptions, type PartResult,
} from './common.js';

interface StormFigures {
  rewrites: number;
  answers: number;
  fewer: number;
  errors: number;
  firstError: string | undefined;
  refreshes: number;
  minKeys: number;
  final: number;
  baseline: number;
  seconds: number;
  died: boolean;
}

async function storm(fixture: string, rewrites: number, seed: number, nfs: boolean): Promise<StormFigures> {
  const rand = prng(seed);
  const root = copyTree(fixture);
  const d = await launch(root);
  const tmcc = path.join(root, 'var/emulab/boot/tmcc');
  const saved = fs.readdirSync(tmcc).map((f) => [f, fs.readFileSync(path.join(tmcc, f))] as const);
  const ak = path.join(root, 'users/cy/.ssh/authorized_keys');
  const akText = nfs ? fs.readFileSync(ak) : undefined;
  const f: StormFigures = { rewrites: 0, answers: 0, fewer: 0, errors: 0, firstError: undefined, refreshes: 0, minKeys: Infinity, final: 0, baseline: 0, seconds: 0, died: false };
  const agents: http.Agent[] = [];
  let stop = false;
  try {
    f.baseline = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
    const logFrom = d.logs.length;
    const client = async (unix: boolean): Promise<void> => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      while (!stop) {
        try {
          const r = await postRaw(unix ? { socket: d.socket! } : { port: d.port }, GET_SSH_KEYS, { agent, timeoutMs: 5000 });
          if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
          const n = totalKeys(keysOfReply(r.body));
          f.answers++;
          f.minKeys = Math.min(f.minKeys, n);
          if (n < f.baseline) f.fewer++;
        } catch (err) {
          f.errors++;
          f.firstError ??= `${unix ? 'unix' : 'tcp'}: ${(err as Error).message}`;
          if (!alive(d)) return;
        }
      }
    };
    const clients = [client(false), client(false), client(false), ...(d.socket ? [client(true)] : [])];
    const t0 = Date.now();
    for (let i = 0; i < rewrites && alive(d); i++) {
      fs.rmSync(tmcc, { recursive: true, force: true });
      const r = rand();
      // Missing for a moment, or long enough for the debounced refresh to see it missing.
      if (r < 0.5) await new Promise((res) => setImmediate(res));
      else if (r < 0.85) await delay(Math.floor(rand() * 30));
      else await delay(100 + Math.floor(rand() * 150));
      fs.mkdirSync(tmcc);
      for (const [name, data] of saved) {
        if (name === 'accounts' && rand() < 0.3) {
          // Half written first, completed a moment later.
          const cut = Math.floor(rand() * data.length);
          fs.writeFileSync(path.join(tmcc, name), data.subarray(0, cut));
          await delay(Math.floor(rand() * 120));
          fs.appendFileSync(path.join(tmcc, name), data.subarray(cut));
        } else {
          fs.writeFileSync(path.join(tmcc, name), data);
        }
      }
      if (nfs && akText) {
        fs.writeFileSync(`${ak}.new`, akText);
        fs.renameSync(`${ak}.new`, ak);
      }
      f.rewrites++;
      await delay(Math.floor(rand() * 40));
    }
    // Let the last rewrite be picked up: wait (bounded) until no refresh was logged for 600 ms.
    const deadline = Date.now() + 5000;
    let lastCount = -1;
    let quietPolls = 0;
    while (Date.now() < deadline && quietPolls < 3) {
      const count = d.logs.length - logFrom === 0 ? 0 : d.logs.slice(logFrom).filter((l) => l.msg === 'refresh').length;
      quietPolls = count === lastCount ? quietPolls + 1 : 0;
      lastCount = count;
      await delay(200);
    }
    f.seconds = (Date.now() - t0) / 1000;
    stop = true;
    await Promise.all(clients);
    f.refreshes = d.logs.slice(logFrom).filter((l) => l.msg === 'refresh').length;
    f.died = !alive(d);
    f.final = f.died ? 0 : totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
    if (!f.died) await stopDaemon(d);
  } finally {
    stop = true;
    for (const a of agents) a.destroy();
  }
  return f;
}

// RSA: GetSSHKeys lists only the types PlanetLab served (ssh-rsa, ssh-dss) by default.
const NEW_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCGn13VxKqgpdHkcVPb28OD4jgh7ZuktA8pNcjFKtDezypE7y8Sx2KEa2ibVHra4yhc7dwajPgFhf3J8pRlTDLTfLovT7gsSyjQwjAZRb9RjlfCTTik5K+MpaZ3Njh4onjJ+tQu+c2I3TroVPU2e+nMq6/odMVZn6CeTT0egwJW81GUp1u8e8a0yfpEFOs+JytGxjkdXiB6H5H271deOBboyoQ7LvZUQ1dfRKOFxkc5OlSfxdx2JuIpo04IN6SmUItlxpT6D7yD3DXaQ7Vz7klA9qq1ICTutycR7PQcvavnVJhl2dafWFmNqjYI5Df3ojDUHTG3xVqqwc28IVf3UlD3 ben@storm';

/**
 * An update that lands just as the daemon comes up (Emulab rewrites tmcc at boot, when sliceid
 * starts): a key appended `afterMs` after the "ready" line must be served within 3 s.
 */
async function changeAfterReady(afterMs: number): Promise<{ served: boolean; ms: number }> {
  const root = copyTree(pnodeFixture);
  const d = await launch(root);
  try {
    const baseline = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
    if (afterMs) await delay(afterMs);
    fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc/accounts'), `PUBKEY LOGIN=ben KEY="${NEW_KEY}"\n`);
    const t = Date.now();
    while (Date.now() - t < 3000) {
      if (totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body)) === baseline + 1) return { served: true, ms: Date.now() - t };
      await delay(50);
    }
    return { served: false, ms: Date.now() - t };
  } finally {
    await stopDaemon(d);
  }
}

/**
 * The accounts file as the updater leaves it for a moment: cut at every line end, just before
 * every newline, and every 64 bytes. After each cut a refresh (SIGHUP) must keep serving every
 * key; then the full file is restored. Deterministic: reproduces what the storm hits by chance.
 */
async function truncationSweep(fixture: string): Promise<{ cuts: number; fewer: string[] }> {
  const root = copyTree(fixture);
  const d = await launch(root);
  const file = path.join(root, 'var/emulab/boot/tmcc/accounts');
  const full = fs.readFileSync(file);
  const refresh = async (): Promise<void> => {
    const from = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh' && String(l['trigger']).includes('SIGHUP'), 10_000, from);
  };
  try {
    const baseline = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
    const cuts = new Set<number>();
    for (let i = 0; i < full.length; i += 64) cuts.add(i);
    for (let i = 0; i < full.length; i++) {
      if (full[i] === 0x0a) {
        cuts.add(i);
        if (i + 1 < full.length) cuts.add(i + 1);
      }
    }
    const fewer: string[] = [];
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      fs.writeFileSync(file, full.subarray(0, cut));
      await refresh();
      const n = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
      if (n < baseline) {
        const line = full.subarray(0, cut).toString('utf8').split('\n').length;
        const where = cut > 0 && full[cut - 1] === 0x0a ? 'after a whole line' : full[cut] === 0x0a ? 'just before a newline' : 'mid-line';
        fewer.push(`byte ${cut} (line ${line}, ${where}): ${n} keys`);
      }
      fs.writeFileSync(file, full);
      await refresh();
    }
    return { cuts: cuts.size, fewer };
  } finally {
    await stopDaemon(d);
  }
}

export async function run({ quick, log }: PartOptions): Promise<PartResult> {
  const result = newResult();
  const seed = Number(process.env['SLICEID_STORM_SEED'] ?? Date.now() % 2 ** 31);
  log(`seed ${seed} (SLICEID_STORM_SEED=${seed} replays the timings)`);
  const runs: Array<[string, string, number, boolean]> = [['emulab-pnode', pnodeFixture, quick ? 100 : 500, false]];
  runs.push(['emulab-nfs', nfsFixture, quick ? 30 : 150, true]);
  for (const [name, fixture, n, nfs] of runs) {
    const f = await storm(fixture, n, seed, nfs);
    result.figures.push(
      [`${name} rewrites`, `${f.rewrites} of ${n} in ${f.seconds.toFixed(1)} s (${f.refreshes} refreshes logged)`],
      [`${name} answers`, `${f.answers} (min keys ${Number.isFinite(f.minKeys) ? f.minKeys : '-'}, baseline ${f.baseline}, final ${f.final})`],
      [`${name} answers with fewer keys`, f.fewer],
      [`${name} errors`, f.errors + (f.firstError ? ` (first: ${f.firstError})` : '')],
    );
    if (f.died) result.failures.push(`${name}: the daemon died`);
    if (f.rewrites < n) result.failures.push(`${name}: only ${f.rewrites} of ${n} rewrites`);
    if (f.fewer) result.failures.push(`${name}: ${f.fewer} answers with fewer keys than ${f.baseline}`);
    if (f.errors) result.failures.push(`${name}: ${f.errors} errors (first: ${f.firstError})`);
    if (f.final !== f.baseline) result.failures.push(`${name}: ${f.final} keys served after the storm, ${f.baseline} before`);
    if (f.answers < f.rewrites) result.failures.push(`${name}: only ${f.answers} answers during ${f.rewrites} rewrites`);
  }
  for (const [name, fixture] of [['emulab-pnode', pnodeFixture], ['emulab-nfs', nfsFixture]] as const) {
    const sweep = await truncationSweep(fixture);
    result.figures.push([`${name} accounts cut short (sweep)`, `${sweep.cuts} cuts, ${sweep.fewer.length} served fewer keys${sweep.fewer.length ? `: ${sweep.fewer.slice(0, 4).join('; ')}${sweep.fewer.length > 4 ? '; ...' : ''}` : ''}`]);
    if (sweep.fewer.length) result.failures.push(`${name}: ${sweep.fewer.length} of ${sweep.cuts} cut-short accounts files made GetSSHKeys serve fewer keys (a file cut at a line end, or mid-line where the cut line still parses, is taken as complete)`);
  }
  // Updates right at start-up: nothing may be lost there either.
  const trials = [0, 0, 0, 250];
  const outcomes = [];
  for (const after of trials) {
    const r = await changeAfterReady(after);
    outcomes.push({ after, served: r.served, ms: r.ms });
  }
  const lost = outcomes.filter((o) => !o.served);
  result.figures.push([
    'key appended right after "ready"',
    outcomes.map((o) => `+${o.after} ms: ${o.served ? `served ${o.ms} ms later` : 'LOST'}`).join(', '),
  ]);
  if (lost.length) {
    result.failures.push(`${lost.length} of ${trials.length} keys appended right after the daemon said "ready" were never served (not within 3 s, nor later: no event comes)`);
  }
  return result;
}
