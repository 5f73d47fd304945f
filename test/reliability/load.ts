// Part 6, load: 200 concurrent keep-alive clients (autocannon) call GetSSHKeys for 60 s (15 s
// quick). Every reply must be 200 with the complete GetSSHKeys body (autocannon's expectBody:
// a different body counts as a mismatch). Goals: zero errors, timeouts, non-2xx, mismatches.
import fs from 'node:fs';
import autocannon from 'autocannon';
import {
  alive, GET_SSH_KEYS, keysOfReply, launchOn, mb, newResult, openFds, pnodeFixture, postRaw, rssKb, stopDaemon, totalKeys,
  type PartOptions, type PartResult,
} from './common.js';

function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

export async function run({ quick, log }: PartOptions): Promise<PartResult> {
  const result = newResult();
  const seconds = quick ? 15 : 60;
  const connections = 200;
  const d = await launchOn(pnodeFixture);
  const pid = d.proc.pid;
  try {
    const first = await postRaw({ port: d.port }, GET_SSH_KEYS);
    const expectBody = first.body.toString('utf8');
    const baseline = totalKeys(keysOfReply(first.body));
    const rssStart = rssKb(pid);
    const cpuStart = cpuSeconds(pid);
    let rssMax = rssStart ?? 0;
    const timer = setInterval(() => (rssMax = Math.max(rssMax, rssKb(pid) ?? 0)), 500);
    log(`${connections} connections for ${seconds} s against GetSSHKeys (${baseline} keys, ${first.body.length} byte reply)`);
    let r: autocannon.Result;
    try {
      r = await autocannon({
        url: `http://127.0.0.1:${d.port}/`,
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: GET_SSH_KEYS,
        connections,
        duration: seconds,
        timeout: 10,
        expectBody,
      });
    } finally {
      clearInterval(timer);
    }
    const cpu = cpuSeconds(pid) - cpuStart;
    const after = alive(d) ? totalKeys(keysOfReply((await postRaw({ port: d.port }, GET_SSH_KEYS)).body)) : 0;
    result.figures.push(
      ['requests', `${r.requests.total} completed (${r.requests.sent} sent) in ${r.duration.toFixed(1)} s by ${connections} connections`],
      ['rps', `mean ${r.requests.average.toFixed(0)}, min ${r.requests.min}, max ${r.requests.max}`],
      ['latency', `p50 ${r.latency.p50} ms, p90 ${r.latency.p90} ms, p99 ${r.latency.p99} ms, max ${r.latency.max} ms`],
      ['errors / timeouts / non-2xx / mismatched bodies', `${r.errors} / ${r.timeouts} / ${r.non2xx} / ${r.mismatches}`],
      ['throughput', `${(r.throughput.average / 2 ** 20).toFixed(1)} MB/s`],
      ['daemon CPU during the run', `${cpu.toFixed(1)} s`],
      ['daemon RSS start / max', `${mb(rssStart)} / ${mb(rssMax)}; fds ${openFds(pid)}`],
      ['keys after / baseline', `${after} / ${baseline}`],
      ['daemon crashes', alive(d) ? 0 : 1],
    );
    if (!alive(d)) result.failures.push('the daemon died under load');
    if (r.errors) result.failures.push(`${r.errors} errors (connection errors and timeouts)`);
    if (r.timeouts) result.failures.push(`${r.timeouts} timeouts`);
    if (r.non2xx) result.failures.push(`${r.non2xx} non-2xx replies`);
    if (r.mismatches) result.failures.push(`${r.mismatches} replies differ from the GetSSHKeys reply`);
    if (r.requests.total === 0) result.failures.push('no request completed');
    if (after < baseline) result.failures.push(`after the load ${after} keys served, baseline ${baseline}`);
    const how = await stopDaemon(d);
    if (how !== '0') result.notes.push(`SIGTERM after the load: ${how}`);
  } finally {
    if (alive(d)) d.proc.kill('SIGKILL');
  }
  return result;
}
