// The security suite (`npm run test:security`, as root): a slice user who is not root on the node
// attacks the real daemon, started by the SysV initscript on a temp node tree (home directory and
// tmp owned as on a node). The attacker's steps run in children dropped to that user's uid with
// setpriv. Asserted: no 16-character run of the target files (an SSH host private key, the
// daemon's own authority key) in the log, `status` or any API answer; every API call during the
// attacks answered within 1 s; the daemon never exits; after a squat of the socket path and a
// restart the path answers sliceid's keys. Ends with "N passed, N failed".
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { projectDir, ownFixtures } from '../helpers/fixtures.js';
import { jsonLines } from '../helpers/daemon.js';
import { encodeMethodCall } from '../../src/xmlrpc/encode.js';
import { hostileAttacks } from './hostile.js';

const ATTACKER = process.env['SLICEID_ATTACKER'] ?? 'sliceid-attacker';
const LOGIN = 'cy'; // the NFS fixture's user, whose keys come from ~/.ssh/authorized_keys
const CALL_LIMIT_MS = 1000;
const cli = path.join(projectDir, 'dist', 'src', 'cli.js');
const bin = path.join(projectDir, 'bin', 'sliceid.js');
const initscript = path.join(projectDir, 'packaging', 'sliceid.init');

// ---- results ------------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
function check(name: string, ok: boolean, detail = ''): void {
  if (ok) passed++;
  else failed++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}\n`);
}
const note = (text: string): void => void process.stdout.write(`     ${text}\n`);

// ---- the node tree ----------------------------------------------------------------------------

interface Tree {
  readonly root: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly ak: string;
  readonly goodKeys: string;
  readonly socket: string;
  readonly log: string;
  readonly hostKey: string;
  readonly rootKeys: string;
  readonly rootPublicKey: string;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function makeTree(): Tree {
  const uid = Number(sh('id', ['-u', ATTACKER]).trim());
  const gid = Number(sh('id', ['-g', ATTACKER]).trim());
  const root = fs.mkdtempSync('/tmp/sliceid-security-');
  fs.cpSync(path.join(ownFixtures, 'emulab-nfs'), root, { recursive: true, filter: (src) => path.basename(src) !== 'expected.json' });
  // The attacker can reach its home inside the tree, as on a node.
  fs.chmodSync(root, 0o755);
  const accounts = path.join(root, 'var/emulab/boot/tmcc/accounts');
  fs.writeFileSync(accounts, fs.readFileSync(accounts, 'utf8').replace(/UID=\d+ GID=\d+ ROOT=1/, `UID=${uid} GID=${gid} ROOT=0`));
  const home = path.join(root, 'users', LOGIN);
  const ak = path.join(home, '.ssh/authorized_keys');
  const goodKeys = path.join(home, 'keys.good');
  fs.copyFileSync(ak, goodKeys);
  for (const p of [home, path.dirname(ak), ak, goodKeys]) fs.chownSync(p, uid, gid);
  fs.chmodSync(home, 0o755);
  fs.chmodSync(path.dirname(ak), 0o700);
  fs.chmodSync(ak, 0o600);
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  // Targets: a host private key in a world-searchable /etc/ssh, root's own .ssh (0700).
  fs.mkdirSync(path.join(root, 'etc/ssh'), { mode: 0o755 });
  const hostKey = path.join(root, 'etc/ssh/ssh_host_rsa_key');
  sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-C', 'host', '-f', hostKey]);
  fs.chmodSync(hostKey, 0o600);
  const rootSsh = path.join(root, 'root/.ssh');
  fs.mkdirSync(rootSsh, { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(root, 'root'), 0o700);
  const rootPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim();
  const rootKeys = path.join(rootSsh, 'authorized_keys');
  fs.writeFileSync(rootKeys, `${rootPublicKey}\n${fs.readFileSync(hostKey, 'utf8')}`, { mode: 0o600 });
  return {
    root, uid, gid, home, ak, goodKeys, rootKeys, rootPublicKey, hostKey,
    socket: path.join(root, 'tmp/nodemanager.api'),
    log: path.join(root, 'var/log/sliceid.log'),
  };
}

/** Every 16-character run of the secret files: what must never appear anywhere. */
function secretRuns(files: readonly string[]): Set<string> {
  const runs = new Set<string>();
  for (const f of files) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      if (line.startsWith('-----')) continue; // PEM armour lines are no secret
      for (let i = 0; i + 16 <= line.length; i++) runs.add(line.slice(i, i + 16));
    }
  }
  return runs;
}

function leaks(text: string, runs: ReadonlySet<string>): number {
  const found = new Set<string>();
  for (let i = 0; i + 16 <= text.length; i++) {
    const run = text.slice(i, i + 16);
    if (runs.has(run)) found.add(run);
  }
  return found.size;
}

// ---- the attacker -------------------------------------------------------------------------------

function attackerArgs(t: Tree, argv: string[]): string[] {
  return ['--reuid', String(t.uid), '--regid', String(t.gid), '--clear-groups', '--', ...argv];
}

function attackerEnv(t: Tree): NodeJS.ProcessEnv {
  return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: t.home, AK: t.ak, SSHDIR: path.dirname(t.ak), GOOD: t.goodKeys, SOCK: t.socket, LOG: t.log };
}

/** One attacker step: a shell script run as the unprivileged user; its exit status. */
function asAttacker(t: Tree, script: string, extra: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string } {
  const r = spawnSync('setpriv', attackerArgs(t, ['sh', '-c', script]), { env: { ...attackerEnv(t), ...extra }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stderr: r.stderr };
}

/** A long-running attacker process (its own process group, killed by the suite). */
function attackerLoop(t: Tree, argv: string[], extra: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn('setpriv', attackerArgs(t, argv), { env: { ...attackerEnv(t), ...extra }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
}

function killLoop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      resolve();
    }
  });
}

// ---- the daemon, through the initscript ----------------------------------------------------------

function initEnv(t: Tree): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    SLICEID_SYSCONFIG: path.join(t.root, 'etc/sysconfig/sliceid'),
    SLICEID_ROOT: t.root,
    SLICEID_BIN: bin,
    SLICEID_LOCKFILE: path.join(t.root, 'var/lock/subsys/sliceid'),
    SLICEID_LOGFILE: t.log,
    SLICEID_OPTIONS: '--port 0',
  };
}

function init(t: Tree, action: string): { code: number | null; out: string } {
  const r = spawnSync('sh', [initscript, action], { env: initEnv(t), encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function pid(t: Tree): number | undefined {
  try {
    const n = Number(fs.readFileSync(path.join(t.root, 'var/run/sliceid.pid'), 'utf8').trim());
    process.kill(n, 0);
    return n;
  } catch {
    return undefined;
  }
}

function logLines(t: Tree): Array<Record<string, unknown>> {
  return jsonLines(fs.readFileSync(t.log, 'utf8'));
}

/** The TCP port of the latest start (port 0: the system chose). */
function port(t: Tree): number {
  const ready = logLines(t).filter((l) => l['msg'] === 'ready').at(-1);
  return ready!['port'] as number;
}

// ---- API calls ------------------------------------------------------------------------------------

interface Answer {
  readonly ms: number;
  phase?: string;
  at?: number;
  readonly body?: string;
  readonly error?: string;
}

function call(target: { socketPath: string } | { port: number }, method: string, params: string[] = []): Promise<Answer> {
  const started = performance.now();
  const body = encodeMethodCall(method, params);
  return new Promise((resolve) => {
    const req = http.request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : target), method: 'POST', path: '/', headers: { 'content-type': 'text/xml' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ ms: performance.now() - started, body: text }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => resolve({ ms: performance.now() - started, error: err.message }));
    req.end(body);
  });
}

/**
 * API calls in a loop while attacks run, every answer's time and text kept. It runs in a worker
 * thread: the suite's own synchronous steps (status, the attacker's commands) must not count as
 * the daemon's delay.
 */
const PROBER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const { targets, bodies } = workerData;
let running = true;
let phase = 'start';
const answers = [];
parentPort.on('message', (m) => { if (m.phase) phase = m.phase; if (m.stop) running = false; });
function call(target, body) {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ ...target, method: 'POST', path: '/', headers: { 'content-type': 'text/xml' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ ms: performance.now() - started, body: text }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => resolve({ ms: performance.now() - started, error: err.message }));
    req.end(body[1]);
  });
}
(async () => {
  for (let i = 0; running; i++) {
    const body = bodies[i % bodies.length];
    const target = targets[i % targets.length];
    const at = Date.now();
    const a = await call(target, body);
    answers.push({ ...a, at, phase: phase + ' ' + body[0] + ' ' + (target.socketPath ? 'unix' : 'tcp') });
    await new Promise((r) => setTimeout(r, 10));
  }
  parentPort.postMessage(answers);
})();
`;

class Prober {
  answers: Answer[] = [];
  private worker: Worker | undefined;
  constructor(private readonly t: Tree) {}
  start(): void {
    const targets = [{ socketPath: this.t.socket }, { host: '127.0.0.1', port: port(this.t) }];
    const methods: Array<[string, string[]]> = [['GetSSHKeys', []], ['GetXIDs', []], ['GetRecord', ['cslab_web2']], ['Help', []]];
    const bodies = methods.map(([m, p]) => [m, encodeMethodCall(m, p)]);
    this.worker = new Worker(PROBER, { eval: true, workerData: { targets, bodies } });
  }
  set phase(phase: string) {
    this.worker?.postMessage({ phase });
  }
  async stop(): Promise<void> {
    const w = this.worker!;
    const done = new Promise<Answer[]>((resolve) => w.once('message', resolve));
    w.postMessage({ stop: true });
    this.answers = await done;
    await w.terminate();
  }
}

// ---- waiting for the daemon ----------------------------------------------------------------------

interface StatusJson {
  sources: Array<{ id: string; stale: boolean; reason?: string }>;
  lastRefresh?: { at: number };
}

const outputs: string[] = [];

function status(t: Tree): StatusJson {
  const r = spawnSync(process.execPath, [cli, 'status', '--json', '--root', t.root], { encoding: 'utf8', timeout: 20_000 });
  const text = spawnSync(process.execPath, [cli, 'status', '--root', t.root], { encoding: 'utf8', timeout: 20_000 }).stdout;
  outputs.push(r.stdout, text);
  return JSON.parse(r.stdout) as StatusJson;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGHUP, then wait for a refresh that started after it. */
async function refreshed(t: Tree): Promise<StatusJson> {
  const before = status(t).lastRefresh?.at ?? 0;
  process.kill(pid(t)!, 'SIGHUP');
  let s = status(t);
  await until(() => (s = status(t)).lastRefresh !== undefined && s.lastRefresh.at > before, 15_000);
  return s;
}

function akSource(s: StatusJson): { stale: boolean; reason?: string } | undefined {
  return s.sources.find((x) => x.id === `authorized_keys:${LOGIN}`);
}

async function keysServed(t: Tree): Promise<string> {
  const a = await call({ port: port(t) }, 'GetSSHKeys');
  return a.body ?? '';
}

// ---- the attacks ----------------------------------------------------------------------------------

async function restoreGood(t: Tree): Promise<void> {
  asAttacker(t, 'rm -rf "$SSHDIR" && mkdir -m 0700 "$SSHDIR" && cp "$GOOD" "$AK" && chmod 0600 "$AK"');
  await refreshed(t);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('the security suite needs root (run test/security/setup.sh first)\n');
    return 1;
  }
  const t = makeTree();
  const started = Date.now();
  note(`tree ${t.root}, attacker ${ATTACKER} uid ${t.uid}`);
  const loops: ChildProcess[] = [];
  try {
    const up = init(t, 'start');
    check('daemon starts through the initscript', up.code === 0 && pid(t) !== undefined, up.out.trim());
    const daemonPid = pid(t)!;
    const logMode = fs.statSync(t.log).mode & 0o777;
    check('the log is 0640', logMode === 0o640, logMode.toString(8));
    check('the attacker cannot read the log', asAttacker(t, 'cat "$LOG" >/dev/null').code !== 0);
    const authorityKeys = fs.readdirSync(path.join(t.root, 'var/lib/sliceid/gid')).filter((f) => f.endsWith('.key')).map((f) => path.join(t.root, 'var/lib/sliceid/gid', f));
    check('the state directory is 0700 and the keys 0600',
      (fs.statSync(path.join(t.root, 'var/lib/sliceid')).mode & 0o777) === 0o700 && authorityKeys.length > 0 && authorityKeys.every((k) => (fs.statSync(k).mode & 0o777) === 0o600));
    const runs = secretRuns([t.hostKey, ...authorityKeys]);
    const goodAnswer = await keysServed(t);
    const goodKey = fs.readFileSync(t.goodKeys, 'utf8').split('\n').find((l) => l.startsWith('ssh-') || l.startsWith('ecdsa-'))!;
    check("the user's keys are served before the attacks", goodAnswer.includes(goodKey.split(' ')[1]!));

    const prober = new Prober(t);
    prober.start();

    prober.phase = 'symlink file';
    // 1. authorized_keys a symlink to a private key (and to the daemon's own authority key).
    for (const [label, target] of [['the host private key', t.hostKey], ['the authority key', authorityKeys[0]!]] as const) {
      asAttacker(t, 'rm -f "$AK" && ln -s "$TARGET" "$AK"', { TARGET: target });
      const s = await refreshed(t);
      const src = akSource(s);
      check(`symlink to ${label}: refused by name`, !!src?.stale && /rule file-symlink/.test(src.reason ?? ''), src?.reason);
      check(`symlink to ${label}: last good keys kept`, (await keysServed(t)).includes(goodKey.split(' ')[1]!));
    }
    prober.phase = '2. ~/.ssh a symli';
    // 2. ~/.ssh a symlink to root's .ssh (its authorized_keys: a public key and the private key).
    asAttacker(t, 'rm -rf "$SSHDIR" && ln -s "$TARGET" "$SSHDIR"', { TARGET: path.dirname(t.rootKeys) });
    let s = await refreshed(t);
    check('~/.ssh a symlink to root\'s .ssh: refused by name', /rule dir-symlink/.test(akSource(s)?.reason ?? ''), akSource(s)?.reason);
    check("root's own key is not served", !(await keysServed(t)).includes(t.rootPublicKey.split(' ')[1]!));
    prober.phase = '3. A hard link';
    // 3. A hard link to the host key (possible only where fs.protected_hardlinks is 0).
    await restoreGood(t);
    const linked = asAttacker(t, 'rm -f "$AK" && ln "$TARGET" "$AK"', { TARGET: t.hostKey }).code === 0;
    s = await refreshed(t);
    if (linked) check('a hard link to the host key: refused by name', /rule file-hard-link/.test(akSource(s)?.reason ?? ''), akSource(s)?.reason);
    else note('hard link to a root file refused by the kernel here (fs.protected_hardlinks = 1)');
    prober.phase = '4. Group-writable';
    // 4. Group-writable file, and .ssh a FIFO-like special: modes and types refused.
    await restoreGood(t);
    asAttacker(t, 'chmod 0666 "$AK"');
    s = await refreshed(t);
    check('a world-writable authorized_keys: refused by name', /rule file-writable/.test(akSource(s)?.reason ?? ''), akSource(s)?.reason);
    asAttacker(t, 'rm -f "$AK" && mkfifo "$AK"');
    const fifoStart = performance.now();
    s = await refreshed(t);
    check('a FIFO nobody writes: refused by name, without blocking', /rule file-not-regular/.test(akSource(s)?.reason ?? ''), `${akSource(s)?.reason} (${Math.round(performance.now() - fifoStart)} ms)`);
    prober.phase = '5. A file swapped';
    // 5. A file swapped for a FIFO in a tight loop while refreshes run.
    await restoreGood(t);
    const swapper = attackerLoop(t, ['sh', '-c', 'while :; do rm -f "$AK"; mkfifo "$AK"; rm -f "$AK"; cp "$GOOD" "$AK"; done']);
    loops.push(swapper);
    const hups = Date.now() + 8000;
    let sent = 0;
    while (Date.now() < hups) {
      process.kill(daemonPid, 'SIGHUP');
      sent++;
      await new Promise((r) => setTimeout(r, 150));
    }
    await killLoop(swapper);
    check(`FIFO swapped in a tight loop during ${sent} refreshes: the daemon lives`, pid(t) === daemonPid);
    await restoreGood(t);
    check('after the FIFO loop the keys are served', (await keysServed(t)).includes(goodKey.split(' ')[1]!));
    prober.phase = '6. The attacker c';
    // 6. The attacker calls the API itself (anyone local may read it).
    const own = asAttacker(t, `exec "$NODE" -e 'require("net").connect(process.env.SOCK).on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))'`, { NODE: process.execPath });
    check('the attacker may call the API (read-only methods)', own.code === 0, own.stderr);

    await prober.stop();
    const late = prober.answers.filter((a) => a.error || a.ms > CALL_LIMIT_MS);
    const max = Math.max(...prober.answers.map((a) => a.ms));
    for (const a of late) note(`late: ${a.phase} at +${a.at! - started} ms: ${a.error ?? `${Math.round(a.ms)} ms`}`);
    check(`every API call during the attacks answered within ${CALL_LIMIT_MS} ms`, late.length === 0, `${prober.answers.length} calls, max ${Math.round(max)} ms, ${late.length} late or failed${late[0] ? ` (${late[0].error ?? `${Math.round(late[0].ms)} ms`})` : ''}`);
    check('the daemon never exited during the attacks', pid(t) === daemonPid);

    // Issue 24: bounded replies, bounded watching, fair connections, clean status.
    await hostileAttacks(
      {
        check,
        note,
        asAttacker: (script, extra) => asAttacker(t, script, extra),
        refreshed: () => refreshed(t),
        restoreGood: () => restoreGood(t),
        statusText: () => {
          const text = spawnSync(process.execPath, [cli, 'status', '--root', t.root], { encoding: 'utf8', timeout: 20_000 }).stdout;
          outputs.push(text);
          return text;
        },
        pid: () => pid(t) ?? -1,
        port: () => port(t),
        attackerArgs: (argv) => attackerArgs(t, argv),
        attackerEnv: () => attackerEnv(t),
      },
      t,
    );

    // 7. The socket path while sliceid is stopped, and a squat before it starts.
    const stop = init(t, 'stop');
    const st = fs.lstatSync(t.socket, { throwIfNoEntry: false });
    check('SIGTERM after the attacks stops the daemon (not killed)', stop.code === 0 && /OK/.test(stop.out) && !/killed/.test(stop.out), stop.out.trim());
    check('after stop the socket file stays, root-owned', !!st?.isSocket() && st.uid === 0);
    check('the attacker cannot remove it', asAttacker(t, 'rm -f "$SOCK"').code !== 0 && fs.existsSync(t.socket));
    const fakeServer = path.join(t.home, 'fake.js');
    fs.writeFileSync(fakeServer, [
      'const body = "<?xml version=\\"1.0\\"?><methodResponse><params><param><value><struct><member><name>cslab_web2</name><value><string>ssh-ed25519 FAKEFAKE attacker</string></value></member></struct></value></param></params></methodResponse>";',
      'require("fs").rmSync(process.env.SOCK, { force: true });',
      'require("net").createServer((s) => s.once("data", () => s.end(`HTTP/1.1 200 OK\\r\\nContent-Type: text/xml\\r\\nContent-Length: ${body.length}\\r\\n\\r\\n${body}`))).listen(process.env.SOCK, () => console.error("listening"));',
    ].join('\n'));
    fs.chownSync(fakeServer, t.uid, t.gid);
    const bindWhileStopped = asAttacker(t, `exec "$NODE" -e 'require("net").createServer().listen(process.env.SOCK,()=>process.exit(0)).on("error",()=>process.exit(1))'`, { NODE: process.execPath });
    check('the attacker cannot bind the path while sliceid is stopped', bindWhileStopped.code !== 0);
    // The path free (a reboot cleared /tmp): the attacker gets there first.
    fs.rmSync(t.socket);
    const fake = attackerLoop(t, [process.execPath, fakeServer]);
    loops.push(fake);
    await until(() => fs.existsSync(t.socket), 10_000);
    const fakeAnswer = await call({ socketPath: t.socket }, 'GetSSHKeys');
    check('(the squat is real: the attacker serves the path)', (fakeAnswer.body ?? '').includes('FAKEFAKE'), fakeAnswer.error);
    const again = init(t, 'start');
    check('sliceid starts over a squatted socket path', again.code === 0 && pid(t) !== undefined, again.out.trim());
    const warned = logLines(t).some((l) => l['level'] === 40 && String(l['msg']).includes(`taken by uid ${t.uid}`));
    check('with a warning naming the squatter\'s uid', warned);
    const viaSocket = await call({ socketPath: t.socket }, 'GetSSHKeys');
    const viaTcp = await call({ port: port(t) }, 'GetSSHKeys');
    check("after the squat and the restart the socket path answers sliceid's keys", !!viaSocket.body && viaSocket.body === viaTcp.body && !viaSocket.body.includes('FAKEFAKE'));
    await killLoop(fake);
    // Variations: a directory, a symlink to a root file, a regular file at the path.
    const shadow = path.join(t.root, 'etc/shadow');
    fs.writeFileSync(shadow, 'root:*:1::::::\n', { mode: 0o600 });
    for (const [label, script] of [
      ['a directory', 'mkdir -p "$SOCK/x"'],
      ['a symlink to a root-only file', 'ln -s "$TARGET" "$SOCK"'],
      ['a regular file', 'echo squat > "$SOCK"'],
    ] as const) {
      init(t, 'stop');
      fs.rmSync(t.socket, { force: true });
      asAttacker(t, script, { TARGET: shadow });
      const up2 = init(t, 'start');
      const a = await call({ socketPath: t.socket }, 'GetSSHKeys');
      const b = await call({ port: port(t) }, 'GetSSHKeys');
      check(`squat by ${label}: replaced, the path answers sliceid's keys`, up2.code === 0 && !!a.body && a.body === b.body, up2.out.trim());
    }
    check('a symlinked squat never changed its target', (fs.statSync(shadow).mode & 0o777) === 0o600 && fs.statSync(shadow).uid === 0);

    // 8. Nothing of the targets anywhere.
    status(t);
    const apiText = prober.answers.map((a) => a.body ?? '').join('\n');
    const logText = fs.readFileSync(t.log, 'utf8');
    check('no 16-character run of the targets in the log', leaks(logText, runs) === 0, `${leaks(logText, runs)} runs`);
    check('no 16-character run of the targets in status', leaks(outputs.join('\n'), runs) === 0);
    check('no 16-character run of the targets in any API answer', leaks(apiText, runs) === 0);
    check('refusals are in the log by rule', /rule file-symlink/.test(logText) || logLines(t).some((l) => /file-symlink/.test(JSON.stringify(l))));
  } finally {
    for (const l of loops) await killLoop(l);
    init(t, 'stop');
    try {
      fs.rmSync(t.root, { recursive: true, force: true });
    } catch (err) {
      note(`could not remove ${t.root}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  process.stdout.write(`security suite took ${Math.round((Date.now() - started) / 1000)} s\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stdout.write(`FAIL the suite itself: ${err instanceof Error ? err.stack : String(err)}\n${passed} passed, ${failed + 1} failed\n`);
    process.exit(1);
  },
);
