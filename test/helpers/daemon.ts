// Start the real daemon (compiled CLI in dist/) on a temp root and talk to it.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { projectDir } from './fixtures.js';

export const cliPath = path.join(projectDir, 'dist', 'src', 'cli.js');

/** The JSON lines of a log file's text (pino's lines); anything else in it is skipped. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export interface RunningDaemon {
  readonly proc: ChildProcess;
  readonly root: string;
  readonly port: number;
  readonly socket: string | undefined;
  readonly logs: LogLine[];
  /** Resolves with the first log line (from now on, or already seen if `seen`) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, fromIndex?: number): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Poll `fn` until it returns a truthy value or the deadline passes. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, stepMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cli?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.cli ?? cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function startDaemon(root: string, extra: string[] = [], timeoutMs = 60000, cli = cliPath, env: NodeJS.ProcessEnv = process.env): Promise<RunningDaemon> {
  const proc = spawn(process.execPath, [cli, 'run', '--root', root, '--port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, SLICEID_LOG_LEVEL: 'debug' },
  });
  const logs: LogLine[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; from: number; resolve: (l: LogLine) => void }>();
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    let entry: LogLine;
    try {
      entry = JSON.parse(line) as LogLine;
    } catch {
      entry = { msg: line };
    }
    logs.push(entry);
    for (const w of waiters) {
      if (logs.length - 1 >= w.from && w.pred(entry)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitForLog = (pred: (l: LogLine) => boolean, ms = 5000, fromIndex = logs.length): Promise<LogLine> => {
    const seen = logs.slice(fromIndex).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { pred, from: fromIndex, resolve: (l: LogLine) => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${ms} ms; stderr: ${stderr.slice(-500)}; last logs: ${JSON.stringify(logs.slice(-3))}`));
      }, ms);
      waiters.add(waiter);
      void exited.then((code) => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code}) before a matching log line; stderr: ${stderr.slice(-800)}`));
      });
    });
  };
  const ready = await waitForLog((l) => l.msg === 'ready', timeoutMs, 0);
  const daemon: RunningDaemon = {
    proc,
    root,
    port: ready['port'] as number,
    socket: ready['socket'] as string | undefined,
    logs,
    waitForLog,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
  process.once('exit', () => proc.kill('SIGKILL'));
  return daemon;
}

const GET_SSH_KEYS = '<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>';

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** POST an XML-RPC body over loopback TCP; resolves with status and body. */
export function post(port: number, body: string, pathName = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'POST', agent, headers: { 'content-type': 'text/xml' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** GetSSHKeys over TCP, decoded into { slice: keys string } (a minimal decoder for this one reply shape). */
export async function getSshKeys(port: number): Promise<Record<string, string>> {
  const { status, body } = await post(port, GET_SSH_KEYS);
  if (status !== 200 || body.includes('<fault>')) throw new Error(`GetSSHKeys failed: ${status} ${body.slice(0, 300)}`);
  const out: Record<string, string> = {};
  const member = /<member>\s*<name>([^<]*)<\/name>\s*<value>(?:<string>)?([^<]*)(?:<\/string>)?<\/value>\s*<\/member>/g;
  for (const m of body.matchAll(member)) out[unescapeXml(m[1]!)] = unescapeXml(m[2]!);
  return out;
}

export function keyCount(answer: Record<string, string>): number {
  return Object.values(answer).reduce((n, s) => n + s.split('\n').filter(Boolean).length, 0);
}
