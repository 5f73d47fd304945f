// Shared pieces of the reliability suite: part results, child-process and mount bookkeeping (so
// everything is undone even on error), raw HTTP over TCP or the Unix socket, a strict checker of
// XML-RPC replies, GID chain checks with openssl, and the control client.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { SaxesParser } from 'saxes';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { copyTree, ownFixtures, projectDir } from '../helpers/fixtures.js';

export interface PartOptions {
  readonly quick: boolean;
  /** Print one line of progress or figures, indented under the part's name. */
  readonly log: (line: string) => void;
}

export interface PartResult {
  /** Figures in print order: inputs, kills, rewrites, requests; crashes, losses, errors. */
  readonly figures: Array<[string, string | number]>;
  /** Goals missed; empty means the part passed. */
  readonly failures: string[];
  /** Cases that could not run here, with the reason. */
  readonly skipped: string[];
  /** Things worth knowing that are not failures. */
  readonly notes: string[];
}

export function newResult(): PartResult {
  return { figures: [], failures: [], skipped: [], notes: [] };
}

export type Part = (opts: PartOptions) => Promise<PartResult>;

export const pnodeFixture = path.join(ownFixtures, 'emulab-pnode');
export const nfsFixture = path.join(ownFixtures, 'emulab-nfs');
export { projectDir };

// ---------------------------------------------------------------------------------------------
// Bookkeeping: every daemon started and every mount made by the suite, undone at the end.

const daemons = new Set<RunningDaemon>();
const mounts: string[] = [];

/** startDaemon, remembered so `cleanupAll` can kill it whatever happens. */
export async function launch(root: string, extra: string[] = [], timeoutMs = 20000): Promise<RunningDaemon> {
  const d = await startDaemon(root, extra, timeoutMs);
  daemons.add(d);
  void new Promise<void>((resolve) => d.proc.once('exit', () => resolve())).then(() => daemons.delete(d));
  return d;
}

/** A copy of a fixture tree with a running daemon on it. */
export async function launchOn(fixture: string, extra: string[] = []): Promise<RunningDaemon> {
  return launch(copyTree(fixture), extra);
}

export function alive(d: RunningDaemon): boolean {
  return d.proc.exitCode === null && d.proc.signalCode === null;
}

/** SIGKILL and wait for the exit. */
export async function kill9(d: RunningDaemon): Promise<void> {
  if (!alive(d)) return;
  const exited = new Promise<void>((resolve) => d.proc.once('exit', () => resolve()));
  d.proc.kill('SIGKILL');
  await exited;
}

/** SIGTERM with a deadline, then SIGKILL. Returns the exit code (or a description). */
export async function stopDaemon(d: RunningDaemon, ms = 5000): Promise<string> {
  if (!alive(d)) return `already exited (${d.proc.exitCode ?? d.proc.signalCode})`;
  const exited = new Promise<string>((resolve) => d.proc.once('exit', (code, sig) => resolve(code !== null ? String(code) : String(sig))));
  d.proc.kill('SIGTERM');
  const timer = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
  const how = await Promise.race([exited, timer]);
  if (how !== 'timeout') return how;
  d.proc.kill('SIGKILL');
  await exited;
  return `did not stop within ${ms} ms of SIGTERM; killed`;
}

/** `mount ...args target` (args hold the source where one is needed: `--bind SRC`, `-t tmpfs ... tmpfs`). */
export function mount(args: string[], target: string): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('mount', [...args, target], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `mount: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: `mount ${args.join(' ')} ${target}: ${(r.stderr || r.stdout).trim()} (exit ${r.status})` };
  if (!args.some((a) => a.includes('remount'))) mounts.push(target);
  return { ok: true };
}

export function umount(target: string): void {
  const i = mounts.lastIndexOf(target);
  if (i >= 0) mounts.splice(i, 1);
  if (!isMountPoint(target)) return;
  spawnSync('umount', [target]);
  // A busy mount is detached lazily rather than left behind.
  if (isMountPoint(target)) spawnSync('umount', ['-l', target]);
}

export function isMountPoint(dir: string): boolean {
  try {
    const want = path.resolve(dir);
    return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === want);
  } catch {
    return false;
  }
}

export async function cleanupAll(): Promise<void> {
  for (const d of [...daemons]) {
    if (alive(d)) d.proc.kill('SIGKILL');
  }
  while (mounts.length) umount(mounts[mounts.length - 1]!);
}

export function cleanupAllSync(): void {
  for (const d of daemons) if (alive(d)) d.proc.kill('SIGKILL');
  while (mounts.length) umount(mounts[mounts.length - 1]!);
}

// ---------------------------------------------------------------------------------------------
// Process figures.

export function rssKb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function openFds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

export function mb(kb: number | undefined): string {
  return kb === undefined ? '?' : `${(kb / 1024).toFixed(1)} MB`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A small seeded PRNG (mulberry32), so every random choice of a run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP.

export const GET_SSH_KEYS = '<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>';

export interface Target {
  readonly port?: number;
  readonly socket?: string;
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly ms: number;
}

/** POST `body` to `/` (or `pathName`) with `agent`; rejects on transport errors and after `timeoutMs`. */
export function postRaw(
  target: Target,
  body: Buffer | string,
  opts: { agent?: http.Agent; timeoutMs?: number; headers?: http.OutgoingHttpHeaders; pathName?: string } = {},
): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(target.socket ? { socketPath: target.socket } : { host: '127.0.0.1', port: target.port }),
        path: opts.pathName ?? '/',
        method: 'POST',
        agent: opts.agent ?? false,
        headers: opts.headers ?? { 'content-type': 'text/xml' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10000, () => req.destroy(new Error(`no reply within ${opts.timeoutMs ?? 10000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Slice name -> number of keys, from a GetSSHKeys reply checked with the strict parser. */
export function keysOfReply(body: Buffer | string): Map<string, number> {
  const v = parseResponse(body);
  if (v.kind !== 'response') throw new Error(`GetSSHKeys did not answer a response: ${v.kind === 'fault' ? `fault ${v.code} ${v.string}` : v.why}`);
  const out = new Map<string, number>();
  const top = v.value;
  if (top.type !== 'struct') throw new Error(`GetSSHKeys answered a ${top.type}, not a struct`);
  for (const [name, val] of top.members) {
    if (val.type !== 'string') throw new Error(`GetSSHKeys member ${name} is a ${val.type}`);
    out.set(name, val.text.split('\n').filter((s) => s.trim()).length);
  }
  return out;
}

export function totalKeys(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

// ---------------------------------------------------------------------------------------------
// A strict XML-RPC methodResponse checker (saxes: a conforming, non-validating XML parser).

interface Node {
  name: string;
  children: Node[];
  text: string;
}

export type RpcValue =
  | { type: 'struct'; members: Array<[string, RpcValue]> }
  | { type: 'array'; items: RpcValue[] }
  | { type: 'string'; text: string }
  | { type: 'int' | 'boolean' | 'double' | 'dateTime.iso8601' | 'base64'; text: string };

export type Verdict =
  | { kind: 'response'; value: RpcValue }
  | { kind: 'fault'; code: number; string: string }
  | { kind: 'invalid'; why: string };

function parseTree(xml: string): Node {
  const parser = new SaxesParser({ xmlns: false, position: false });
  const stack: Node[] = [{ name: '#doc', children: [], text: '' }];
  let error: Error | undefined;
  parser.on('error', (e) => {
    error ??= e;
  });
  parser.on('opentag', (t) => {
    const node: Node = { name: t.name, children: [], text: '' };
    stack[stack.length - 1]!.children.push(node);
    stack.push(node);
  });
  parser.on('closetag', () => void stack.pop());
  parser.on('text', (t) => void (stack[stack.length - 1]!.text += t));
  parser.on('doctype', () => {
    error ??= new Error('DOCTYPE in a reply');
  });
  parser.write(xml).close();
  if (error) throw error;
  const doc = stack[0]!;
  if (doc.children.length !== 1) throw new Error('no single root element');
  return doc.children[0]!;
}

function only(node: Node, name: string): Node {
  if (node.children.length !== 1 || node.children[0]!.name !== name) {
    throw new Error(`<${node.name}> must hold exactly one <${name}>, holds ${node.children.map((c) => `<${c.name}>`).join('') || 'none'}`);
  }
  if (node.text.trim()) throw new Error(`<${node.name}> holds text beside <${name}>`);
  return node.children[0]!;
}

function value(node: Node): RpcValue {
  if (node.name !== 'value') throw new Error(`<${node.name}> where a <value> belongs`);
  if (node.children.length === 0) return { type: 'string', text: node.text };
  const t = only(node, node.children[0]!.name);
  switch (t.name) {
    case 'string':
      if (t.children.length) throw new Error('<string> holds elements');
      return { type: 'string', text: t.text };
    case 'int':
    case 'i4':
      if (!/^[-+]?\d+$/.test(t.text.trim()) || Math.abs(Number(t.text)) > 2 ** 31) throw new Error(`bad <${t.name}> ${t.text}`);
      return { type: 'int', text: t.text };
    case 'boolean':
      if (!/^[01]$/.test(t.text.trim())) throw new Error(`bad <boolean> ${t.text}`);
      return { type: 'boolean', text: t.text };
    case 'double':
      if (!Number.isFinite(Number(t.text)) || !t.text.trim()) throw new Error(`bad <double> ${t.text}`);
      return { type: 'double', text: t.text };
    case 'dateTime.iso8601':
    case 'base64':
      return { type: t.name as 'base64' | 'dateTime.iso8601', text: t.text };
    case 'array': {
      const data = only(t, 'data');
      if (data.text.trim()) throw new Error('<data> holds text');
      return { type: 'array', items: data.children.map(value) };
    }
    case 'struct': {
      if (t.text.trim()) throw new Error('<struct> holds text');
      const members: Array<[string, RpcValue]> = [];
      for (const m of t.children) {
        if (m.name !== 'member' || m.children.length !== 2) throw new Error('bad <member>');
        const [n, v] = m.children as [Node, Node];
        if (n.name !== 'name' || n.children.length) throw new Error('bad member <name>');
        members.push([n.text, value(v)]);
      }
      return { type: 'struct', members };
    }
    default:
      throw new Error(`<${t.name}> is not an XML-RPC type a reply may hold`);
  }
}

/** Check that `body` is a well-formed XML-RPC methodResponse: a response or a proper fault. */
export function parseResponse(body: Buffer | string): Verdict {
  try {
    const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body);
    const root = parseTree(text);
    if (root.name !== 'methodResponse') return { kind: 'invalid', why: `root <${root.name}>` };
    if (root.children.length !== 1) return { kind: 'invalid', why: 'methodResponse must hold params or fault' };
    const inner = root.children[0]!;
    if (inner.name === 'params') {
      const v = value(only(only(inner, 'param'), 'value'));
      return { kind: 'response', value: v };
    }
    if (inner.name === 'fault') {
      const v = value(only(inner, 'value'));
      if (v.type !== 'struct') return { kind: 'invalid', why: 'fault value is not a struct' };
      const code = v.members.find(([n]) => n === 'faultCode')?.[1];
      const str = v.members.find(([n]) => n === 'faultString')?.[1];
      if (v.members.length !== 2 || code?.type !== 'int' || str?.type !== 'string') {
        return { kind: 'invalid', why: `fault struct must be {faultCode: int, faultString: string}, is ${JSON.stringify(v.members.map(([n, x]) => [n, x.type]))}` };
      }
      return { kind: 'fault', code: Number(code.text), string: str.text };
    }
    return { kind: 'invalid', why: `<${inner.name}> in methodResponse` };
  } catch (err) {
    return { kind: 'invalid', why: (err as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// The control client: one GetSSHKeys after another (TCP and Unix socket in turn), counting
// successes, failures, answers with fewer keys than the baseline, and latency. It runs in a
// worker thread, so its figures are the daemon's, not the harness's.

export interface ControlFigures {
  ok: number;
  failed: number;
  fewer: number;
  maxMs: number;
  over100ms: number;
  latencies: number[];
  /** [Date.now() at the answer, latency ms] for every answer. */
  samples: Array<[number, number]>;
  firstError: string | undefined;
}

/** The control loop itself; runs in a worker thread (control-worker.ts) so that the harness's own
 * work (generating bodies, handling 1000 sockets) does not show up as the daemon's latency. */
export async function controlLoop(
  target: { port: number; socket: string | undefined },
  baselineKeys: number,
  pauseMs: number,
  stopped: () => boolean,
): Promise<ControlFigures> {
  const figures: ControlFigures = { ok: 0, failed: 0, fewer: 0, maxMs: 0, over100ms: 0, latencies: [], samples: [], firstError: undefined };
  const tcpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const unixAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let i = 0;
  while (!stopped()) {
    const useUnix = target.socket !== undefined && i++ % 2 === 1;
    try {
      const r = await postRaw(useUnix ? { socket: target.socket! } : { port: target.port }, GET_SSH_KEYS, {
        agent: useUnix ? unixAgent : tcpAgent,
        timeoutMs: 5000,
      });
      if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString('utf8', 0, 200)}`);
      const n = totalKeys(keysOfReply(r.body));
      figures.ok++;
      figures.latencies.push(r.ms);
      figures.samples.push([Date.now(), r.ms]);
      figures.maxMs = Math.max(figures.maxMs, r.ms);
      if (r.ms > 100) figures.over100ms++;
      if (n < baselineKeys) figures.fewer++;
    } catch (err) {
      figures.failed++;
      figures.firstError ??= `${useUnix ? 'unix' : 'tcp'}: ${(err as Error).message}`;
    }
    await delay(pauseMs);
  }
  tcpAgent.destroy();
  unixAgent.destroy();
  return figures;
}

export class ControlClient {
  figures: ControlFigures = { ok: 0, failed: 0, fewer: 0, maxMs: 0, over100ms: 0, latencies: [], samples: [], firstError: undefined };
  private worker: Worker | undefined;
  private result: Promise<ControlFigures> | undefined;

  constructor(
    private readonly target: { port: number; socket: string | undefined },
    private readonly baselineKeys: number,
    /** Pause between calls (0: none); pacing, not synchronisation. */
    private readonly pauseMs = 0,
  ) {}

  start(): this {
    const worker = new Worker(new URL('./control-worker.js', import.meta.url), {
      workerData: { target: this.target, baselineKeys: this.baselineKeys, pauseMs: this.pauseMs },
    });
    this.worker = worker;
    this.result = new Promise<ControlFigures>((resolve) => {
      worker.once('message', (f: ControlFigures) => resolve(f));
      worker.once('error', (err) => resolve({ ...this.figures, failed: this.figures.failed + 1, firstError: `control worker: ${err.message}` }));
      worker.once('exit', () => resolve({ ...this.figures, failed: this.figures.failed + 1, firstError: this.figures.firstError ?? 'control worker exited without figures' }));
    });
    return this;
  }

  async stop(): Promise<ControlFigures> {
    if (!this.worker || !this.result) return this.figures;
    this.worker.postMessage('stop');
    const timer = new Promise<ControlFigures>((resolve) =>
      setTimeout(() => resolve({ ...this.figures, failed: this.figures.failed + 1, firstError: 'control worker did not stop within 10 s' }), 10_000).unref(),
    );
    this.figures = await Promise.race([this.result, timer]);
    await this.worker.terminate();
    this.worker = undefined;
    return this.figures;
  }

  p99(): number {
    return percentile([...this.figures.latencies].sort((a, b) => a - b), 99);
  }
}

// ---------------------------------------------------------------------------------------------
// Identity files.

export function splitPem(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => m[0] + '\n');
}

/**
 * Check a GID chain file with openssl: every certificate parses, and the leaf verifies up the
 * chain to the last (self-signed) certificate. Returns the leaf's subject and URN, or what is wrong.
 */
export function checkGidFile(file: string, scratch: string): { ok: true; subject: string; urn: string | undefined } | { ok: false; why: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, why: `unreadable: ${(err as Error).message}` };
  }
  const certs = splitPem(text);
  if (certs.length < 2) return { ok: false, why: `${certs.length} certificate(s) in the chain, want leaf + issuer (${text.length} bytes)` };
  const leftover = text.replace(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g, '').trim();
  if (leftover) return { ok: false, why: `text outside the certificates: ${JSON.stringify(leftover.slice(0, 80))}` };
  fs.mkdirSync(scratch, { recursive: true });
  const files = certs.map((c, i) => {
    const f = path.join(scratch, `${path.basename(file)}.${i}.pem`);
    fs.writeFileSync(f, c);
    return f;
  });
  let subject = '';
  let urn: string | undefined;
  try {
    for (const [i, f] of files.entries()) {
      const out = execFileSync('openssl', ['x509', '-noout', '-subject', '-ext', 'subjectAltName', '-in', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (i === 0) {
        subject = /subject=(.*)/.exec(out)?.[1]?.trim() ?? '';
        urn = /URI:(urn:publicid:[^,\s]+)/.exec(out)?.[1];
      }
    }
    const args = ['verify', '-CAfile', files[files.length - 1]!];
    if (files.length > 2) {
      const mid = path.join(scratch, `${path.basename(file)}.untrusted.pem`);
      fs.writeFileSync(mid, certs.slice(1, -1).join(''));
      args.push('-untrusted', mid);
    }
    args.push(files[0]!);
    execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    return { ok: false, why: `openssl: ${(e.stderr || e.stdout || e.message).trim().split('\n').slice(-2).join(' | ')}` };
  } finally {
    for (const f of files) fs.rmSync(f, { force: true });
  }
  return { ok: true, subject, urn };
}

/** The project's own GID parser and verifier, when dist has it (loaded lazily; undefined otherwise). */
export async function projectGidChecker(): Promise<((text: string) => string | undefined) | undefined> {
  const mod = path.join(projectDir, 'dist', 'src', 'identity', 'gid.js');
  if (!fs.existsSync(mod)) return undefined;
  try {
    const m = (await import(mod)) as {
      parseGidChain?: (t: string) => unknown[];
      verifyGidChain?: (c: unknown[]) => { ok: boolean; reason?: string };
    };
    if (!m.parseGidChain || !m.verifyGidChain) return undefined;
    const { parseGidChain, verifyGidChain } = m;
    return (text) => {
      try {
        const v = verifyGidChain(parseGidChain(text));
        return v.ok ? undefined : `does not verify: ${v.reason}`;
      } catch (err) {
        return `does not parse: ${(err as Error).message}`;
      }
    };
  } catch {
    return undefined;
  }
}

/** Temp files an atomic write may leave in `dir` (names like .slicename.0a1b2c.tmp). */
export function tempFilesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => /\.tmp$|\.new$|~$/.test(f));
  } catch {
    return [];
  }
}

/** A raw TCP connection (for hostile clients). */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export function fmtMs(ms: number): string {
  return Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : String(ms);
}
