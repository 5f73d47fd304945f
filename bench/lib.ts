// Helpers for the benchmark: child processes that are always killed, JSON log lines, /proc
// readers, one-shot XML-RPC calls over loopback, and small statistics.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest folder above this file with a package.json, not inside dist/. */
export const projectDir = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 20; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && path.basename(dir) !== 'dist') return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error('bench: cannot find the checkout (a folder with package.json) above this file');
})();

export const GETSSHKEYS_CALL = '<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>';

// ---------------------------------------------------------------------------------------------
// Children: every process we start is tracked and killed on exit, error or Ctrl-C.

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killAllSync(): void {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}, killing children\n`);
    killAllSync();
    process.exit(130);
  });
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export type LogLine = Record<string, unknown> & { msg?: unknown };

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Parsed JSON stdout lines, in order (non-JSON lines are kept as {raw}). */
  readonly lines: LogLine[];
  /** Arrival time (performance.now()) of each entry of lines. */
  readonly lineTimes: number[];
  stderr: string;
  exitCode: number | null | undefined;
  readonly exited: Promise<void>;
  /** Emits 'line' for each stdout line and 'exit' once. */
  readonly events: EventEmitter;
}

export function startChild(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Child {
  const proc = spawn(cmd, args, { cwd: opts.cwd ?? projectDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  live.add(proc);
  let resolveExit!: () => void;
  const child: Child = {
    name,
    proc,
    pid: proc.pid ?? -1,
    lines: [],
    lineTimes: [],
    stderr: '',
    exitCode: undefined,
    exited: new Promise<void>((r) => (resolveExit = r)),
    events: new EventEmitter(),
  };
  const done = (code: number | null): void => {
    if (child.exitCode !== undefined) return;
    child.exitCode = code;
    live.delete(proc);
    resolveExit();
    child.events.emit('exit');
  };
  proc.on('exit', (code, signal) => done(code ?? (signal ? -1 : null)));
  proc.on('error', (err) => {
    child.stderr += `spawn error: ${err.message}\n`;
    done(-1);
  });
  // Diagnosis only: SLICEID_BENCH_CHILD_LOGS=DIR keeps every child's stdout in DIR/<pid>.log.
  const logDir = process.env['SLICEID_BENCH_CHILD_LOGS'];
  if (logDir) proc.stdout!.pipe(fs.createWriteStream(path.join(logDir, `${proc.pid}.log`)));
  const rl = readline.createInterface({ input: proc.stdout!, crlfDelay: Infinity });
  rl.on('line', (line) => {
    let parsed: LogLine;
    try {
      const v: unknown = JSON.parse(line);
      parsed = v && typeof v === 'object' && !Array.isArray(v) ? (v as LogLine) : { raw: line };
    } catch {
      parsed = { raw: line };
    }
    child.lines.push(parsed);
    child.lineTimes.push(performance.now());
    child.events.emit('line');
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    if (child.stderr.length < 64 * 1024) child.stderr += d;
  });
  return child;
}

/** Wait (bounded) for the first stdout line from index `from` on that satisfies `pred`. */
export function waitForLine(
  child: Child,
  pred: (l: LogLine) => boolean,
  timeoutMs: number,
  from = 0,
): Promise<{ line: LogLine; at: number; index: number }> {
  return new Promise((resolve, reject) => {
    let i = from;
    const cleanup = (): void => {
      clearTimeout(timer);
      child.events.off('line', check);
      child.events.off('exit', check);
    };
    const check = (): void => {
      for (; i < child.lines.length; i++) {
        const line = child.lines[i]!;
        if (pred(line)) {
          cleanup();
          resolve({ line, at: child.lineTimes[i]!, index: i });
          return;
        }
      }
      if (child.exitCode !== undefined) {
        cleanup();
        reject(new Error(`${child.name} exited (code ${child.exitCode}) before the expected line. stderr: ${tail(child.stderr)} stdout: ${tail(child.lines.map((l) => JSON.stringify(l)).join('\n'))}`));
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${child.name}: no expected line within ${timeoutMs} ms. stderr: ${tail(child.stderr)} stdout: ${tail(child.lines.slice(from).map((l) => JSON.stringify(l)).join('\n'))}`));
    }, timeoutMs);
    child.events.on('line', check);
    child.events.on('exit', check);
    check();
  });
}

function tail(s: string, n = 1500): string {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Returns ms from the signal to the exit. */
export async function stopChild(child: Child, graceMs = 3000): Promise<number> {
  const t0 = performance.now();
  if (child.exitCode !== undefined) return 0;
  child.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    child.exited.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  return performance.now() - t0;
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds (one try). */
export function tcpConnect(port: number, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect 127.0.0.1:${port}: timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve();
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

export interface RpcReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

/** POST an XML-RPC call to http://127.0.0.1:port/ and return the raw reply. */
export function rpc(port: number, body = GETSSHKEYS_CALL, agent?: http.Agent, timeoutMs = 30_000): Promise<RpcReply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', method: 'POST', agent: agent ?? false, headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`rpc to port ${port}: no reply within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(parseInt(e.slice(1), 10)) : ENTITIES[e]!,
  );
}

/**
 * The struct of string members of a GetSSHKeys methodResponse (enough XML-RPC to compare two
 * servers' answers: names and string values, entities decoded). Throws on a fault or no struct.
 */
export function parseKeysResponse(xml: string): Record<string, string> {
  if (/<fault>/.test(xml)) throw new Error(`GetSSHKeys answered a fault: ${xml.slice(0, 400)}`);
  if (!/<methodResponse>[\s\S]*<struct>[\s\S]*<\/struct>/.test(xml)) throw new Error(`GetSSHKeys: not a struct reply: ${xml.slice(0, 400)}`);
  const out: Record<string, string> = {};
  const member = /<member>\s*<name>([\s\S]*?)<\/name>\s*<value>(?:<string>([\s\S]*?)<\/string>|([^<]*))<\/value>\s*<\/member>/g;
  for (let m = member.exec(xml); m; m = member.exec(xml)) out[decodeXml(m[1]!)] = decodeXml(m[2] ?? m[3] ?? '');
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc

export function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** Resident MB by kind of mapping, from /proc/<pid>/smaps. */
export interface RssDetail {
  /** The node executable's own pages (code and read-only data it touched). */
  node_binary: number;
  /** Native addons (better-sqlite3). */
  addons: number;
  /** Shared libraries. */
  libs: number;
  /** Anonymous mappings: V8's heap and code spaces, malloc arenas other than the main one, stacks. */
  anon: number;
  /** The main malloc arena ([heap]). */
  brk_heap: number;
  /** Other file mappings (SQLite's shared memory, ICU data files...). */
  other: number;
}

export function rssDetail(pid: number): RssDetail | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  let exe = '';
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    /* node_binary then stays 0 and its pages count as libs */
  }
  const kb: RssDetail = { node_binary: 0, addons: 0, libs: 0, anon: 0, brk_heap: 0, other: 0 };
  let kind: keyof RssDetail = 'anon';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? '';
      kind =
        name === '' || (name.startsWith('[') && name !== '[heap]') ? 'anon'
        : name === '[heap]' ? 'brk_heap'
        : name === exe ? 'node_binary'
        : name.endsWith('.node') ? 'addons'
        : /\.so(\.|$)/.test(name) ? 'libs'
        : 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[kind] += Number(rss[1]);
  }
  for (const k of Object.keys(kb) as Array<keyof RssDetail>) kb[k] = Math.round((kb[k] / 1024) * 10) / 10;
  return kb;
}

export const clockTicks = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime+stime in clock ticks from a /proc .../stat file (fields 14 and 15). */
function statTicks(file: string): number {
  const s = fs.readFileSync(file, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

export interface ProcSample {
  /** utime+stime summed over /proc/<pid>/task/<tid>/stat, in seconds. */
  taskCpuS: number;
  /** utime+stime of /proc/<pid>/stat (the whole process, exited threads included), in seconds. */
  procCpuS: number;
  /** Time on CPU from /proc/<pid>/task/<tid>/schedstat, summed, in seconds (ns precision). */
  schedCpuS: number;
  /** voluntary + nonvoluntary context switches summed over /proc/<pid>/task/<tid>/status. */
  ctxSwitches: number;
  threads: number;
}

export function procSample(pid: number): ProcSample {
  let ticks = 0;
  let sched = 0;
  let ctx = 0;
  let threads = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const dir = `/proc/${pid}/task/${tid}`;
    try {
      ticks += statTicks(`${dir}/stat`);
      const status = fs.readFileSync(`${dir}/status`, 'utf8');
      ctx += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      ctx += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      try {
        sched += Number(fs.readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
      } catch {
        /* schedstat needs CONFIG_SCHEDSTATS */
      }
      threads++;
    } catch {
      /* the thread ended between readdir and read */
    }
  }
  return { taskCpuS: ticks / clockTicks, procCpuS: statTicks(`/proc/${pid}/stat`) / clockTicks, schedCpuS: sched, ctxSwitches: ctx, threads };
}

// ---------------------------------------------------------------------------------------------
// Statistics and test data

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Linear-interpolated quantile of a copy of xs (q in [0,1]). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function round(x: number | null | undefined, digits = 2): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/**
 * An ssh-rsa public key blob of the right shape (e = 65537, an odd 2048-bit modulus), base64:
 * random rather than generated, so 30,000 cost nothing. GetSSHKeys lists RSA keys by default.
 */
export function rsaBlob(): string {
  const n = crypto.randomBytes(256);
  n[0]! |= 0x80;
  n[255]! |= 1;
  return Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshString(Buffer.from([1, 0, 1])), sshString(Buffer.concat([Buffer.from([0]), n]))]).toString('base64');
}

/** An Emulab tmcc accounts file: `users` users in group `group`, `keysPer` ssh-rsa keys each. */
export function accountsFile(users: number, keysPer: number, group = { name: 'wlab', gid: 6200 }): string {
  const out: string[] = [`ADDGROUP NAME=${group.name} GID=${group.gid}`];
  const logins = Array.from({ length: users }, (_, i) => `u${String(i).padStart(5, '0')}`);
  logins.forEach((login, i) =>
    out.push(`ADDUSER LOGIN=${login} PSWD=* UID=${20000 + i} GID=${group.gid} ROOT=0 NAME="Bench User ${i}" HOMEDIR=/users/${login} GLIST="" SERIAL=${1600000000 + i} EMAIL="${login}@bench.example" SHELL=bash`),
  );
  for (const login of logins) {
    for (let k = 0; k < keysPer; k++) out.push(`PUBKEY LOGIN=${login} KEY="ssh-rsa ${rsaBlob()} ${login}@key${k}"`);
  }
  return `${out.join('\n')}\n`;
}
