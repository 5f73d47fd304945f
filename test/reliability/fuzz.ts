// Part 1, fuzz: generated and mutated XML-RPC bodies against a live daemon over keep-alive HTTP.
// Goals: every reply is a well-formed methodResponse (a response for valid calls, else a fault)
// or a 4xx; the daemon never dies; RSS growth stays bounded; the control client never fails.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  alive, ControlClient, fmtMs, GET_SSH_KEYS, keysOfReply, launchOn, mb, newResult, parseResponse, pnodeFixture, postRaw,
  rssKb, openFds, stopDaemon, totalKeys, type PartOptions, type PartResult,
} from './common.js';
import { generatedCall, heavyBodies, mutatedCall, oddContentType, validCall, type FuzzBody } from './fuzz-bodies.js';

/** RSS may grow this much from start to end (V8 keeps some heap after big bodies). */
const RSS_GROWTH_LIMIT_KB = 128 * 1024;
const WORKERS = 4;

export async function run({ quick, log }: PartOptions): Promise<PartResult> {
  const result = newResult();
  const total = quick ? 3000 : 50_000;
  const seed = Number(process.env['SLICEID_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  const failDir = fs.mkdtempSync(path.join(os.tmpdir(), `sliceid-fuzz-${seed}-`));
  const canary = path.join(failDir, 'canary.txt');
  const canaryToken = `CANARY-${seed}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(canary, canaryToken);
  log(`seed ${seed} (SLICEID_FUZZ_SEED=${seed} replays it); failing bodies go to ${failDir}`);

  const d = await launchOn(pnodeFixture);
  const pid = d.proc.pid;
  const agent = new http.Agent({ keepAlive: true, maxSockets: WORKERS });
  const unixAgent = new http.Agent({ keepAlive: true, maxSockets: WORKERS });
  let control: ControlClient | undefined;
  let rssTimer: NodeJS.Timeout | undefined;
  try {
    const baseline = totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body));
    // Warm up (JIT, caches) before taking the starting RSS.
    for (let i = 0; i < 200; i++) await postRaw({ port: d.port }, GET_SSH_KEYS, { agent });
    const rssStart = rssKb(pid);
    const fdStart = openFds(pid);
    let rssMax = rssStart ?? 0;
    rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssKb(pid) ?? 0)), 200);
    control = new ControlClient({ port: d.port, socket: d.socket }, baseline, 5).start();

    const heavy = heavyBodies(quick, canary);
    const nGenerated = Math.floor((total - heavy.length) * 0.45);
    const nOddCt = Math.floor((total - heavy.length) * 0.03);
    const nValid = Math.floor((total - heavy.length) * 0.05);
    const nMutated = total - heavy.length - nGenerated - nOddCt - nValid;
    // Bodies are drawn lazily in chunks so the 20,000 are never all in memory at once.
    const plan: Array<{ arb: fc.Arbitrary<FuzzBody>; n: number }> = [
      { arb: generatedCall, n: nGenerated },
      { arb: mutatedCall, n: nMutated },
      { arb: oddContentType, n: nOddCt },
      { arb: validCall, n: nValid },
    ];
    function* bodies(): Generator<FuzzBody> {
      yield* heavy.slice(0, Math.ceil(heavy.length / 2));
      let chunk = 0;
      const CHUNK = 250;
      const iters = plan.map((p) => ({ ...p, left: p.n }));
      while (iters.some((p) => p.left > 0)) {
        for (const p of iters) {
          if (p.left <= 0) continue;
          const n = Math.min(CHUNK, p.left);
          p.left -= n;
          yield* fc.sample(p.arb, { numRuns: n, seed: seed + chunk++ });
        }
      }
      yield* heavy.slice(Math.ceil(heavy.length / 2));
    }

    const counts = { viaUnix: 0, expectValid: 0, sent: 0, response: 0, fault: 0, http4xx: 0, bad: 0, transport: 0, resetOnHuge: 0, validFaulted: 0, canaryLeaks: 0, wrongType: 0 };
    const faultCodes = new Map<number, number>();
    const statuses = new Map<number, number>();
    let bytesSent = 0;
    let slowest = { ms: 0, label: '' };
    const failures: string[] = [];
    const saveFailure = (b: FuzzBody, why: string): void => {
      if (failures.length < 25) {
        const f = path.join(failDir, `failure-${failures.length}.xml`);
        fs.writeFileSync(f, b.body);
        failures.push(`${b.label} (${b.body.length} bytes, path ${b.path}, content-type ${JSON.stringify(b.contentType)}): ${why} [body: ${f}]`);
      }
    };
    const it = bodies();
    let died = false;
    const deadline = Date.now() + (quick ? 35_000 : 110_000);
    const worker = async (): Promise<void> => {
      for (;;) {
        if (died || Date.now() > deadline) return;
        const next = it.next();
        if (next.done) return;
        const b = next.value;
        counts.sent++;
        // One body in ten goes over the Unix socket.
        const viaUnix = d.socket !== undefined && counts.sent % 10 === 0;
        if (viaUnix) counts.viaUnix++;
        bytesSent += b.body.length;
        if (b.expectValid) counts.expectValid++;
        const headers: http.OutgoingHttpHeaders = {};
        if (b.contentType !== undefined) headers['content-type'] = b.contentType;
        try {
          const r = await postRaw(viaUnix ? { socket: d.socket! } : { port: d.port }, b.body, { agent: viaUnix ? unixAgent : agent, headers, pathName: b.path, timeoutMs: b.body.length > 100_000 ? 30_000 : 10_000 });
          if (r.ms > slowest.ms) slowest = { ms: r.ms, label: b.label };
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.body.includes(canaryToken)) {
            counts.canaryLeaks++;
            saveFailure(b, 'the reply contains the canary file (external entity resolved)');
          }
          if (r.status >= 400 && r.status < 500) {
            counts.http4xx++;
            continue;
          }
          if (r.status !== 200) {
            counts.bad++;
            saveFailure(b, `HTTP ${r.status}: ${r.body.toString('utf8', 0, 200)}`);
            continue;
          }
          if (!/^text\/xml\b/.test(String(r.headers['content-type']))) {
            counts.wrongType++;
            saveFailure(b, `content-type ${r.headers['content-type']}`);
          }
          const v = parseResponse(r.body);
          if (v.kind === 'invalid') {
            counts.bad++;
            saveFailure(b, `malformed reply (${v.why}): ${r.body.toString('utf8', 0, 200)}`);
          } else if (v.kind === 'fault') {
            counts.fault++;
            faultCodes.set(v.code, (faultCodes.get(v.code) ?? 0) + 1);
            if (b.expectValid) {
              counts.validFaulted++;
              saveFailure(b, `a valid call got fault ${v.code} ${v.string.slice(0, 150)}`);
            }
          } else {
            counts.response++;
          }
        } catch (err) {
          if (!alive(d)) {
            died = true;
            saveFailure(b, `the daemon died (exit ${d.proc.exitCode ?? d.proc.signalCode})`);
            return;
          }
          if (b.body.length > 1 << 20) counts.resetOnHuge++;
          else {
            counts.transport++;
            saveFailure(b, `transport error: ${(err as Error).message}`);
          }
        }
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const seconds = (Date.now() - t0) / 1000;
    const leftOver = !it.next().done;
    clearInterval(rssTimer);
    rssTimer = undefined;
    const ctlRef = control;
    const ctl = await ctlRef.stop();
    control = undefined;
    const rssEnd = rssKb(pid);
    rssMax = Math.max(rssMax, rssEnd ?? 0);
    const fdEnd = openFds(pid);
    const stillAlive = alive(d);
    const after = stillAlive ? totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body)) : 0;

    result.figures.push(
      ['inputs sent', `${counts.sent} of ${total} planned (${heavy.length} heavy, ~${nGenerated} generated, ~${nMutated} mutated, ~${nOddCt} odd content types; ${counts.expectValid} valid zero-argument calls; ${counts.viaUnix} over the Unix socket), ${(bytesSent / 2 ** 20).toFixed(1)} MB in ${seconds.toFixed(1)} s`],
      ['replies', `${counts.response} responses, ${counts.fault} faults, ${counts.http4xx} 4xx; statuses ${JSON.stringify(Object.fromEntries(statuses))}`],
      ['fault codes', JSON.stringify(Object.fromEntries([...faultCodes].sort((a, b) => b[1] - a[1])))],
      ['malformed or non-4xx error replies', counts.bad],
      ['valid calls answered with a fault', counts.validFaulted],
      ['transport errors', `${counts.transport} (+${counts.resetOnHuge} resets on bodies over 1 MB, allowed)`],
      ['wrong content-type on 200 replies', counts.wrongType],
      ['external entity leaks (canary)', counts.canaryLeaks],
      ['slowest reply', `${fmtMs(slowest.ms)} (${slowest.label})`],
      ['daemon crashes', stillAlive ? 0 : 1],
      ['RSS start / max / end', `${mb(rssStart)} / ${mb(rssMax)} / ${mb(rssEnd)}`],
      ['open fds start / end', `${fdStart} / ${fdEnd}`],
      ['control client', `${ctl.ok} GetSSHKeys ok, ${ctl.failed} failed, ${ctl.fewer} with fewer keys; max ${fmtMs(ctl.maxMs)}, p99 ${fmtMs(ctlRef.p99())}`],
      ['keys after fuzz / baseline', `${after} / ${baseline}`],
    );
    for (const f of failures.slice(0, 10)) result.notes.push(`failing input: ${f}`);
    if (failures.length > 10) result.notes.push(`${failures.length - 10} more failing inputs in ${failDir}`);
    if (!stillAlive) result.failures.push(`the daemon died during the fuzz (exit ${d.proc.exitCode ?? d.proc.signalCode})`);
    if (leftOver) result.failures.push(`only ${counts.sent} of ${total} inputs were sent within the time bound`);
    if (counts.bad) result.failures.push(`${counts.bad} replies were neither a well-formed methodResponse nor a 4xx`);
    if (counts.validFaulted) result.failures.push(`${counts.validFaulted} valid calls were answered with a fault`);
    if (counts.transport) result.failures.push(`${counts.transport} requests got no reply (reset or timeout) on bodies under 1 MB`);
    if (counts.wrongType) result.failures.push(`${counts.wrongType} 200 replies without Content-Type text/xml`);
    if (counts.canaryLeaks) result.failures.push(`external entities were resolved (${counts.canaryLeaks} replies leaked the canary file)`);
    if (ctl.failed) result.failures.push(`the control client failed ${ctl.failed} times (first: ${ctl.firstError})`);
    if (ctl.fewer) result.failures.push(`the control client saw fewer keys ${ctl.fewer} times`);
    if (stillAlive && after < baseline) result.failures.push(`after the fuzz GetSSHKeys serves ${after} keys, baseline ${baseline}`);
    if (rssStart !== undefined && rssEnd !== undefined && rssEnd - rssStart > RSS_GROWTH_LIMIT_KB) {
      result.failures.push(`RSS grew by ${mb(rssEnd - rssStart)} (limit ${mb(RSS_GROWTH_LIMIT_KB)})`);
    }
    if (failures.length === 0) fs.rmSync(failDir, { recursive: true, force: true });
    const how = await stopDaemon(d);
    if (how !== '0' && stillAlive) result.notes.push(`SIGTERM after the fuzz: ${how}`);
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    await control?.stop();
    agent.destroy();
    unixAgent.destroy();
  }
  return result;
}

