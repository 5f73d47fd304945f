// The bench's load client: GetSSHKeys over HTTP with autocannon's programmatic API, exact response
// times kept, pooled over rounds. Used in the bench process (run.ts, the api section) and, for a
// server inside a network namespace, by bench/netns-load.ts run there (host.ts).
import autocannon from 'autocannon';
import { GETSSHKEYS_CALL, procSample, quantile, round } from './lib.js';

export interface LoadFigures {
  rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  mean_ms: number | null;
  max_ms: number | null;
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  duration_s: number;
  /** Little's law: req/s x mean latency should be about the connection count. */
  concurrency_check: number | null;
  /** CPU time of the server process (utime+stime, all threads) per reply, in microseconds. */
  cpu_us_per_req: number | null;
}

/**
 * autocannon writes the next request as soon as a reply is in, even when the server is about to
 * close the connection (HTTP/1.0, or `Connection: close`); that request is lost, stays queued,
 * and every later latency on that client counts from it. This hook makes a client skip that
 * write and send the next request on the new connection autocannon opens when the old one ends.
 */
function closeAwareClient(client: autocannon.Client): void {
  // The 'headers' event carries http-parser-js's info object (typed as plain headers).
  const c = client as unknown as { _doRequest: (...a: unknown[]) => unknown; on(e: 'headers', f: (info: { shouldKeepAlive?: boolean }) => void): void };
  let closing = false;
  c.on('headers', (info) => {
    closing = info.shouldKeepAlive === false;
  });
  const orig = c._doRequest;
  c._doRequest = function (this: unknown, ...a: unknown[]): unknown {
    if (closing) {
      closing = false;
      return undefined;
    }
    return orig.apply(this, a);
  };
}

export interface RawLoad {
  lat: number[];
  /** Server CPU seconds during the run (from /proc/<pid>/stat), null when unreadable. */
  serverCpuS: number | null;
  durationS: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** One autocannon run against 127.0.0.1:port; exact response times of the 2xx replies. */
export async function autocannonRun(port: number, connections: number, durationS: number, close: boolean): Promise<Omit<RawLoad, 'serverCpuS'>> {
  const lat: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const guard = setTimeout(() => inst.stop(), (durationS + 30) * 1000);
    const inst = autocannon(
      {
        url: `http://127.0.0.1:${port}/`,
        method: 'POST',
        headers: close ? { 'content-type': 'text/xml', connection: 'close' } : { 'content-type': 'text/xml' },
        body: GETSSHKEYS_CALL,
        setupClient: closeAwareClient,
        connections,
        pipelining: 1,
        duration: durationS,
        timeout: 10,
      },
      (err: unknown, res: autocannon.Result) => {
        clearTimeout(guard);
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve(res);
      },
    );
    // autocannon's own histogram keeps whole milliseconds; keep exact response times too.
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) lat.push(ms);
    });
  });
  return { lat, durationS: result.duration, errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx };
}

/** The server's CPU seconds so far (all threads, exited ones included), null when unreadable. */
export function serverCpuS(pid: number | undefined): number | null {
  try {
    return pid ? procSample(pid).procCpuS : null;
  } catch {
    return null;
  }
}

/** One autocannon run in this process, with the server's CPU time over it. */
export async function loadRaw(port: number, connections: number, durationS: number, close: boolean, serverPid?: number): Promise<RawLoad> {
  const cpu0 = serverCpuS(serverPid);
  const run = await autocannonRun(port, connections, durationS, close);
  const cpu1 = serverCpuS(serverPid);
  return { ...run, serverCpuS: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null };
}

/** Pool the rounds of one server at one connection count. */
export function summarize(raws: RawLoad[], connections: number, label: string, warn: (s: string) => void): LoadFigures {
  const lat = raws.flatMap((r) => r.lat);
  const dur = raws.reduce((a, r) => a + r.durationS, 0);
  const ok = lat.length;
  const mean = ok ? lat.reduce((a, b) => a + b, 0) / ok : NaN;
  const concurrency = round(((ok / dur) * mean) / 1000, 2);
  if (concurrency !== null && concurrency > connections * 1.2) warn(`WARNING ${label}: ${concurrency} requests in flight on average with ${connections} connections: latencies are suspect`);
  return {
    rps: round(ok / dur, 0),
    p50_ms: round(quantile(lat, 0.5), 3),
    p99_ms: round(quantile(lat, 0.99), 3),
    mean_ms: round(mean, 3),
    max_ms: round(ok ? lat.reduce((a, b) => (a > b ? a : b), 0) : NaN, 3),
    requests: ok,
    errors: raws.reduce((a, r) => a + r.errors, 0),
    timeouts: raws.reduce((a, r) => a + r.timeouts, 0),
    non2xx: raws.reduce((a, r) => a + r.non2xx, 0),
    duration_s: round(dur, 2) ?? 0,
    concurrency_check: concurrency,
    cpu_us_per_req: raws.every((r) => r.serverCpuS !== null) && ok ? round((raws.reduce((a, r) => a + r.serverCpuS!, 0) / ok) * 1e6, 1) : null,
  };
}
