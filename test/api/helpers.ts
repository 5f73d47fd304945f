// Shared by the API tests: a fake NodeManagerData, a running server per test, Python's
// xmlrpc.client as the real client, and small raw HTTP clients for what Python cannot send.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { startApi, type ApiOptions, type ApiServer } from '../../src/api/server.js';
import type { NodeManagerData, SliverRecord } from '../../src/api/types.js';
import { projectDir, tempDir, type Expected } from '../helpers/fixtures.js';

export interface FakeState {
  slicename: string | undefined;
  keys: string[];
  uid: number | undefined;
  record: SliverRecord | undefined;
}

export interface FakeData extends NodeManagerData {
  /** How often each accessor ran (to see memoization at work). */
  readonly calls: Record<'slicename' | 'sliceKeys' | 'sliceUid' | 'record' | 'version', number>;
  /** Change the answers; bumps the version. */
  update(change: Partial<FakeState>): void;
}

export function fakeData(initial: Partial<FakeState> = {}): FakeData {
  const state: FakeState = { slicename: undefined, keys: [], uid: undefined, record: undefined, ...initial };
  let version = 1;
  const calls = { slicename: 0, sliceKeys: 0, sliceUid: 0, record: 0, version: 0 };
  return {
    calls,
    update(change) {
      Object.assign(state, change);
      version++;
    },
    slicename: () => (calls.slicename++, state.slicename),
    sliceKeys: () => (calls.sliceKeys++, state.keys),
    sliceUid: () => (calls.sliceUid++, state.uid),
    record: () => (calls.record++, state.record),
    version: () => (calls.version++, version),
  };
}

/** The data a node of fixture `expected` serves (keys exactly as in its GetSSHKeys answer). */
export function fakeFromExpected(expected: Expected, uid = 20001): FakeData {
  const joined = expected.GetSSHKeys[expected.slicename];
  const keys = joined === undefined ? [] : joined.split('\n');
  return fakeData({
    slicename: expected.slicename,
    keys,
    uid,
    record: {
      name: expected.slicename,
      keys: keys.join('\n'),
      type: 'sliver.Emulab',
      timestamp: 1767225600,
      attributes: { slice_urn: expected.slice.urn },
      slice_hrn: expected.slice.hrn,
    },
  });
}

export interface RunningApi {
  readonly api: ApiServer;
  readonly port: number;
  readonly socket: string;
  readonly url: string;
}

/** Start the API on 127.0.0.1 (and ::1 when the host has it), port 0, and a socket in a temp dir. */
export async function startTestApi(t: ExecutionContext, data: NodeManagerData, extra: Partial<ApiOptions> = {}): Promise<RunningApi> {
  const socket = path.join(tempDir('sliceid-api-'), 'nodemanager.api');
  const api = await startApi({
    data,
    tcp: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
    socket,
    ...extra,
  });
  t.teardown(() => api.close());
  const port = api.addresses.find((a): a is { host: string; port: number } => 'port' in a)!.port;
  return { api, port, socket, url: `http://localhost:${port}/` };
}

// ---- Python -----------------------------------------------------------------------------------

export interface PyAnswer {
  ok?: unknown;
  fault?: [number, string];
  http?: [number, string];
  error?: string;
}

export type PyJob =
  | { transport: 'tcp'; url: string; calls: Array<[string, unknown[]]>; gzip?: boolean }
  | { transport: 'tcp-http10'; host: string; port: number; calls: Array<[string, unknown[]]> }
  | { transport: 'unix-http10' | 'unix-proxy'; socket: string; calls: Array<[string, unknown[]]> };

const clientScript = path.join(projectDir, 'test', 'api', 'client.py');

/** Run test/api/client.py with `job`; resolves with one answer per call. */
export function python(job: PyJob, timeoutMs?: number): Promise<PyAnswer[]>;
/** Several jobs in one Python process; resolves with their answers in order. */
export function python(jobs: PyJob[], timeoutMs?: number): Promise<PyAnswer[][]>;
export function python(job: PyJob | PyJob[], timeoutMs = 20_000): Promise<PyAnswer[] | PyAnswer[][]> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [clientScript], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`client.py exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as PyAnswer[] | PyAnswer[][]);
      } catch {
        reject(new Error(`client.py printed no JSON: ${out} ${err}`));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}

// ---- raw HTTP ---------------------------------------------------------------------------------

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Target = { port: number; host?: string } | { socketPath: string };

/** One request on a fresh connection (no keep-alive agent). */
export function request(
  target: Target,
  opts: { method?: string; path?: string; body?: string | Buffer; headers?: http.OutgoingHttpHeaders; chunked?: boolean } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const where = 'socketPath' in target ? { socketPath: target.socketPath } : { host: target.host ?? '127.0.0.1', port: target.port };
    const body = opts.body ?? '';
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/xml', ...opts.headers };
    if (!opts.chunked) headers['content-length'] = Buffer.byteLength(body);
    const req = http.request({ ...where, method: opts.method ?? 'POST', path: opts.path ?? '/', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.chunked && body.length > 0) {
      const buf = Buffer.from(body);
      for (let i = 0; i < buf.length; i += 64 * 1024) req.write(buf.subarray(i, i + 64 * 1024));
    }
    req.end(opts.chunked ? undefined : body);
  });
}

/** Send raw bytes and collect everything until the server closes the connection. */
export function rawExchange(target: Target, bytes: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = 'socketPath' in target ? net.connect(target.socketPath) : net.connect(target.port, target.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString()}`));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined); // a reset after the reply is fine; 'close' follows
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    sock.write(bytes);
  });
}

/** Resolves when `sock` closes; rejects after `timeoutMs`. Reads (and drops) what arrives meanwhile. */
export function closed(sock: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sock.closed) return resolve();
    sock.resume(); // a paused socket never sees the server's FIN, so it would never close
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export const GET_SSH_KEYS = "<?xml version='1.0'?>\n<methodCall>\n<methodName>GetSSHKeys</methodName>\n<params>\n</params>\n</methodCall>\n";
