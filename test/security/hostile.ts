// The security suite's attacks of issue 24, as the slice user (a non-root uid): a multicall that
// costs gigabytes, a 40k-file tree at ~/.ssh/authorized_keys, a symlink into the daemon's log
// directory, connection slots held idle, file names that drive the operator's terminal. Each
// prints its figures; run.ts calls hostileAttacks() with its own check/note.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { blobText, mpint } from '../keys/keygen.js';
import { encodeMethodCall } from '../../src/xmlrpc/encode.js';

export interface HostileTree {
  readonly root: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly ak: string;
  readonly socket: string;
  readonly log: string;
}

export interface HostileKit {
  check(name: string, ok: boolean, detail?: string): void;
  note(text: string): void;
  /** A shell step as the attacker. */
  asAttacker(script: string, extra?: NodeJS.ProcessEnv): { code: number | null; stderr: string };
  /** SIGHUP and wait for the refresh it starts. */
  refreshed(): Promise<unknown>;
  /** Put the good authorized_keys back and refresh. */
  restoreGood(): Promise<void>;
  /** The `status` text output. */
  statusText(): string;
  pid(): number;
  port(): number;
  attackerArgs(argv: string[]): string[];
  attackerEnv(): NodeJS.ProcessEnv;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Timed {
  readonly ms: number;
  readonly status?: number;
  readonly error?: string;
}

function timedCall(target: { socketPath: string } | { port: number }, method: string): Promise<Timed> {
  const started = performance.now();
  const body = encodeMethodCall(method, []);
  return new Promise((resolve) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : target;
    const req = http.request({ ...where, method: 'POST', path: '/', headers: { 'content-type': 'text/xml' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode }));
      res.on('error', (err) => resolve({ ms: performance.now() - started, error: err.message }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => resolve({ ms: performance.now() - started, error: err.message }));
    req.end(body);
  });
}

/** Run a node script as the attacker (fd limit raised to 8192, as a user may); its stdout. */
function attackerNode(k: HostileKit, t: HostileTree, source: string, extra: NodeJS.ProcessEnv): { done: Promise<string>; kill(): void } {
  const file = path.join(t.home, `attack-${crypto.randomBytes(4).toString('hex')}.cjs`);
  fs.writeFileSync(file, source);
  fs.chownSync(file, t.uid, t.gid);
  const child = spawn('setpriv', k.attackerArgs(['sh', '-c', 'ulimit -n 8192 2>/dev/null; exec "$NODE" "$SCRIPT"']), {
    env: { ...k.attackerEnv(), NODE: process.execPath, SCRIPT: file, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<string>((resolve) => child.once('close', () => resolve(out)));
  return {
    done,
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** inotify watches a process holds: one "inotify wd:" line per watch in its fdinfo. */
export function inotifyWatches(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      for (const line of fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n')) if (line.startsWith('inotify wd:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

const MB = 1024 * 1024;

/** 63 ssh-rsa keys, each text ~16,000 characters: a comment of `&` (the cache's 16 KiB per key; ~1 MiB in all). */
function ampersandKeys(): string {
  const lines: string[] = [];
  for (let i = 0; i < 63; i++) {
    const n = crypto.randomBytes(256);
    n[0]! |= 0x80;
    n[255]! |= 1;
    const bare = blobText('ssh-rsa', [mpint(Buffer.from([1, 0, 1])), mpint(n)]);
    lines.push(`${bare} ${'&'.repeat(16_000 - bare.length - 1)}`);
  }
  return `${lines.join('\n')}\n`;
}

const MULTICALL = `
const http = require('node:http');
const member = '<value><struct><member><name>methodName</name><value><string>GetSSHKeys</string></value></member><member><name>params</name><value><array><data></data></array></value></member></struct></value>';
const doc = '<?xml version="1.0"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>' + member.repeat(256) + '</data></array></value></param></params></methodCall>';
let bytes = 0, replies = 0, faults = 0, max = 0;
function one(target) {
  return new Promise((resolve) => {
    let size = 0, tail = '';
    const req = http.request({ ...target, method: 'POST', path: '/', headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(doc) }, agent: false }, (res) => {
      res.setEncoding('latin1');
      res.on('data', (d) => { size += d.length; const s = tail + d; faults += (s.match(/faultCode/g) || []).length; tail = d.slice(-16); });
      res.on('end', () => { bytes += size; replies++; max = Math.max(max, size); resolve(); });
      res.on('error', resolve);
    });
    req.on('error', resolve);
    req.end(doc);
  });
}
(async () => {
  const targets = [{ socketPath: process.env.SOCK }, { host: '127.0.0.1', port: Number(process.env.PORT) }];
  for (let r = 0; r < Number(process.env.ROUNDS); r++) await Promise.all(Array.from({ length: 8 }, (_, i) => one(targets[i % 2])));
  console.log(JSON.stringify({ sentPerCall: Buffer.byteLength(doc), bytes, replies, faults, max }));
})();
`;

const HOLDER = `
const net = require('node:net');
const targets = [{ path: process.env.SOCK }, { host: '127.0.0.1', port: Number(process.env.PORT) }];
const per = Number(process.env.HOLD);
let connected = 0, renewed = 0;
function hold(target) {
  const s = net.connect(target);
  let up = false;
  s.on('error', () => {});
  s.on('connect', () => { up = true; connected++; });
  s.on('close', () => { if (up) connected--; renewed++; setTimeout(() => hold(target), 50); });
}
for (const t of targets) for (let i = 0; i < per; i++) hold(t);
setInterval(() => console.log(JSON.stringify({ connected, renewed })), 500);
`;

export async function hostileAttacks(k: HostileKit, t: HostileTree): Promise<void> {
  const daemon = k.pid();
  const sockTarget = { socketPath: t.socket };
  const tcpTarget = { port: k.port() };

  // ---- 1. the multicall that cost gigabytes ----------------------------------------------------
  const keysFile = path.join(t.home, 'amp.keys');
  fs.writeFileSync(keysFile, ampersandKeys());
  fs.chownSync(keysFile, t.uid, t.gid);
  k.asAttacker('cp "$KEYS" "$AK" && chmod 0600 "$AK"', { KEYS: keysFile });
  await k.refreshed();
  const single = await new Promise<number>((resolve) => {
    const req = http.request({ socketPath: t.socket, method: 'POST', path: '/', headers: { 'content-type': 'text/xml' }, agent: false }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => resolve(n));
    });
    req.on('error', () => resolve(-1));
    req.end(encodeMethodCall('GetSSHKeys', []));
  });
  k.note(`GetSSHKeys with 63 keys whose comments are ~15.6k '&' each: ${single} bytes (was ~5 MiB)`);
  k.check('a key comment is bounded in GetSSHKeys: the reply is under 200 KB', single > 0 && single < 200_000, `${single} bytes`);
  try {
    fs.writeFileSync(`/proc/${daemon}/clear_refs`, '5');
  } catch {
    k.note('could not reset the peak RSS (clear_refs); VmHWM is the lifetime peak');
  }
  const rssBefore = procStatus(daemon, 'VmRSS');
  let sampled = rssBefore;
  const flood = attackerNode(k, t, MULTICALL, { PORT: String(tcpTarget.port), ROUNDS: '3' });
  let worst = 0;
  let failed = 0;
  let probes = 0;
  let flooding = true;
  void flood.done.then(() => (flooding = false));
  while (flooding) {
    sampled = Math.max(sampled, procStatus(daemon, 'VmRSS'));
    const a = await timedCall(probes % 2 ? sockTarget : tcpTarget, 'GetXIDs');
    probes++;
    worst = Math.max(worst, a.ms);
    if (a.error || a.status !== 200) failed++;
  }
  const floodOut = (await flood.done).trim().split('\n').at(-1) ?? '';
  const peak = Math.max(procStatus(daemon, 'VmHWM'), sampled);
  k.note(`multicall flood (8 parallel x 3 rounds of 256 GetSSHKeys): ${floodOut}`);
  k.note(`daemon RSS before ${Math.round(rssBefore / MB)} MB, peak ${Math.round(peak / MB)} MB (was 1.8-5 GB); worst API latency ${Math.round(worst)} ms over ${probes} calls, ${failed} failed (was 10-15 s)`);
  k.check('multicall flood: peak RSS under 300 MB', peak < 300 * MB, `${Math.round(peak / MB)} MB`);
  k.check('multicall flood: every other call answered, the worst within 2 s', failed === 0 && worst < 2000, `${Math.round(worst)} ms, ${failed} failed`);
  let parsed: { replies?: number; max?: number; faults?: number } = {};
  try {
    parsed = JSON.parse(floodOut) as typeof parsed;
  } catch {
    // reported below
  }
  k.check('multicall flood: each reply bounded by the 16 MiB budget', parsed.replies === 24 && (parsed.max ?? Infinity) <= 16 * MB + 256 * 512, floodOut);
  k.check('the daemon lives after the multicall flood', k.pid() === daemon);
  await k.restoreGood();

  // ---- 2. a 40k-file tree at ~/.ssh/authorized_keys ---------------------------------------------
  const watchesBefore = inotifyWatches(daemon);
  const made = k.asAttacker(
    'T="$HOME/tree" && mkdir -p "$T" && for d in $(seq 40); do mkdir "$T/d$d" && (cd "$T/d$d" && seq 1000 | xargs touch); done && rm -f "$AK" && mv "$T" "$AK"',
  );
  const rssTree0 = procStatus(daemon, 'VmRSS');
  await k.refreshed();
  // Give a watcher that would recurse the time to do it (events of the mv, a rescan).
  await sleep(1500);
  const watchesTree = inotifyWatches(daemon);
  const rssTree = procStatus(daemon, 'VmRSS');
  k.note(`inotify watches of the daemon: ${watchesBefore} before, ${watchesTree} with a 40,000-file tree at ~/.ssh/authorized_keys (was 26-40k); RSS ${Math.round(rssTree0 / MB)} -> ${Math.round(rssTree / MB)} MB`);
  k.check('a 40k-file tree at authorized_keys adds no watch', made.code === 0 && watchesTree <= watchesBefore + 2, `${watchesBefore} -> ${watchesTree}${made.code ? `; ${made.stderr}` : ''}`);
  await k.restoreGood();

  // ---- 3. ~/.ssh/authorized_keys -> the daemon's log directory -----------------------------------
  const refreshes = (): number => fs.readFileSync(t.log, 'utf8').split('\n').filter((l) => l.includes('"msg":"refresh"')).length;
  k.asAttacker('rm -f "$AK" && ln -s "$LOGDIR" "$AK"', { LOGDIR: path.dirname(t.log) });
  await k.refreshed();
  await sleep(500);
  const r0 = refreshes();
  // The log is written meanwhile (a refresh logs; API clients do not): one more SIGHUP refresh.
  process.kill(daemon, 'SIGHUP');
  await sleep(10_000);
  const during = refreshes() - r0;
  k.note(`refreshes in 10 s with ~/.ssh/authorized_keys -> ${path.dirname(t.log)}: ${during} (${during * 6} per minute; was ~555 per minute)`);
  k.check('a symlink into the log directory starts no refresh loop', during <= 2, `${during} refreshes in 10 s`);
  await k.restoreGood();

  // ---- 4. connection slots held idle -----------------------------------------------------------
  const holder = attackerNode(k, t, HOLDER, { PORT: String(tcpTarget.port), HOLD: '1100' });
  let held = { connected: 0, renewed: 0 };
  // Wait until the attacker holds (about) full tables: the socket 1024, TCP its fair share (about 768).
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && fs.readdirSync(`/proc/${daemon}/fd`).length < 1700) await sleep(250);
  const fds = fs.readdirSync(`/proc/${daemon}/fd`).length;
  let answered = 0;
  let tried = 0;
  let worstHeld = 0;
  for (let i = 0; i < 12; i++) {
    for (const target of [sockTarget, tcpTarget]) {
      tried++;
      const a = await timedCall(target, 'GetSSHKeys');
      worstHeld = Math.max(worstHeld, a.ms);
      if (!a.error && a.status === 200) answered++;
    }
  }
  holder.kill();
  const holderOut = (await holder.done).trim().split('\n').filter((l) => l.startsWith('{')).at(-1) ?? '{}';
  try {
    held = JSON.parse(holderOut) as typeof held;
  } catch {
    // reported as is
  }
  k.note(`slots: the attacker asked for 1100 idle connections per listener; the daemon held ${fds} descriptors; attacker's last view ${JSON.stringify(held)}`);
  k.note(`legitimate calls answered while the slots were held: ${answered} of ${tried} (was 0 of 12), worst ${Math.round(worstHeld)} ms`);
  k.check('held connection slots: every legitimate call answered (socket and TCP)', answered === tried, `${answered}/${tried}`);
  k.check('the daemon lives after the slot attack', k.pid() === daemon);

  // ---- 5. file names that drive the operator's terminal -------------------------------------------
  k.asAttacker(
    'rm -f "$AK" && mkdir "$AK" && touch "$AK/$(printf "\\033[2J")" "$AK/$(printf "x\\nproblems    none")" "$AK/$(printf "\\033[8m")" "$SSHDIR/$(printf "\\033[2Jy")"',
  );
  await k.refreshed();
  await sleep(500);
  const text = k.statusText();
  const controls = text.replace(/\n/g, '').match(/[\x00-\x1f\x7f-\x9f]/g) ?? [];
  const problemRows = text.split('\n').filter((l) => l.startsWith('problems'));
  k.check('status prints no control character a user chose', controls.length === 0, `${controls.length} control characters`);
  k.check('status: no forged "problems" line', problemRows.length === 1, problemRows.join(' | '));
  const logText = fs.readFileSync(t.log, 'utf8');
  k.check('the log holds no raw control character', !/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(logText));
  await k.restoreGood();
}
