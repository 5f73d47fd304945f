// npm run bench -- --only host: what a shared host pays per guest (issue 23, point 1).
//
// `sliceid run --host` (what ships: the staged package on its runtime) as a real process serving
// 1, 10 and 50 guests. Each guest is a busybox chroot of a copy of test/fixtures/pg-vnode with its
// own slice (nickname node2.sl<i>.lab-PG3: slice labpg3_sl<i>), in its own network, UTS and
// mount namespaces (lo up, a tmpfs /tmp), found the way Docker vnodes are: a network namespace
// file in the daemon's `[host] netns_dir` (a directory of the bench's own, so that no other
// namespace of the machine is taken for a guest), whose process is the chrooted one. Measured:
//
// - RSS (VmRSS) of the host daemon 0.5 s after its `host daemon serving` line and 0.5 s after one
//   refresh of every guest (SIGHUP, done when the guests state file shows every guest refreshed);
//   beside it the in-guest alternative, N x the RSS of one node daemon (`sliceid run`, in-guest
//   mode, on the same guest tree in a network namespace of its own) 0.5 s after its ready line.
// - A guest's appearance to its first answer inside it: the clock starts before the namespace
//   file is created in netns_dir; the namespace is made (bind mount, as `ip netns add` does), a
//   client is started in it (the runtime's node, `nsenter --net`) that connects to 127.0.0.1:812
//   every 5 ms until a GetSSHKeys reply with the guest's slice comes, and the guest's process is
//   started (lo up, chroot). The clock stops when the client's line reaches the bench. Nothing is
//   subtracted (the client's own start and output are inside the figure).
// - GetSSHKeys throughput inside a guest (the bench's autocannon client, bench/netns-load.ts, run
//   in the guest's network namespace) against the host daemon serving the largest count of guests
//   and against the node daemon in its own namespace, rounds taking turns as in the api section.
// - Idle CPU of the host daemon with the largest count of guests (utime+stime, as the idle
//   section), then strace on all its threads: timer wakeups (epoll waits that time out, futex
//   waits with a deadline, sleeps, timerfd_settime).
// Needs root, util-linux (unshare, nsenter), iproute2 (ip), busybox; strace is optional.
// Every namespace, mount, process and temp tree is removed, also on error or Ctrl-C.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  GETSSHKEYS_CALL,
  median,
  parseKeysResponse,
  procSample,
  projectDir,
  removeTempDir,
  round,
  rssDetail,
  rssMb,
  startChild,
  stopChild,
  tempDir,
  waitForLine,
  type Child,
  type RssDetail,
} from './lib.js';
import { serverCpuS, summarize, type LoadFigures, type RawLoad } from './load.js';

export interface HostBenchOptions {
  quick: boolean;
  note: (s: string) => void;
  /** The runtime and CLI of the daemon under test (the staged package's). */
  runtime: string;
  cli: string;
  env: NodeJS.ProcessEnv;
  loadS: number;
  loadRounds: number;
  warmupS: number;
  idleS: number;
  idleSettleS: number;
  /** Guest counts (default 1, 10, 50). */
  counts?: number[];
}

export interface HostCount {
  guests: number;
  /** Exec to the `host daemon serving` line (every guest refreshed and listening). */
  start_s: number | null;
  rss_mb_start: number | null;
  rss_mb_after_refresh: number | null;
  /** SIGHUP to the state file showing every guest refreshed. */
  refresh_all_s: number | null;
  /** N x one node daemon's RSS at start (the in-guest alternative). */
  in_guest_rss_mb: number | null;
  rss_detail_start: RssDetail | null;
  rss_detail_after_refresh: RssDetail | null;
  fds: number | null;
  threads: number | null;
  /** Appearance (namespace file created) to the first answer inside the guest, per try (s). */
  appear_s: number[];
  appear_median_s: number | null;
  appear_max_s: number | null;
  /**
   * Per try, s after the clock started: the daemon's first `guest appeared` and `guest served` lines, the client's start,
   * its first HTTP 200 reply without the guest's slice (served before the guest's process was found); connects made.
   */
  appear_detail: Array<{ appeared_s: number | null; served_s: number | null; client_started_s: number | null; other_answer_s: number | null; answered_s: number; connects: number; errors: Record<string, number> }>;
  stop_ms: number | null;
}

export interface HostFigures {
  fixture: string;
  counts: HostCount[];
  /** RSS with the most guests / with one guest. */
  rss_ratio_start: number | null;
  rss_ratio_after_refresh: number | null;
  /** (RSS at the most guests - RSS at one) / (guests - 1), MB per guest. */
  rss_mb_per_guest_after_refresh: number | null;
  node_daemon_rss_mb: number | null;
  node_daemon_rss_detail: RssDetail | null;
  appear_max_s: number | null;
  throughput: {
    guests: number | null;
    host: { c1: LoadFigures | null; c50: LoadFigures | null };
    node: { c1: LoadFigures | null; c50: LoadFigures | null };
    ratio_c1: number | null;
    ratio_c50: number | null;
    /** Server CPU per call, node / host (above 1: the host daemon spends less per call). */
    cpu_ratio_c50: number | null;
    same_data: boolean | null;
    response_bytes: number | null;
    host_rss_mb_after_load: number | null;
  };
  idle: {
    guests: number | null;
    cpu_s_per_60s: number | null;
    ctx_switches_per_60s: number | null;
    measured_s: number | null;
    schedstat_cpu_s: number | null;
    threads: number | null;
    /** CPU (schedstat) in the settle before the window: the clean-up after the last guest event. */
    settle_cpu_ms: number | null;
    /** [second of the window, CPU ms in it (schedstat)] for every second with 0.5 ms or more. */
    cpu_ms_by_second: Array<[number, number]> | null;
    strace_s: number | null;
    /** Completed epoll waits that timed out, futex waits with a deadline that timed out, sleeps, timerfd_settime calls. */
    timer_wakeups: number | null;
    /** Every syscall completed in the strace window (of the traced kinds). */
    syscalls: number | null;
    /** The finite timeouts (ms) epoll waits were given in the window (-1: none). */
    epoll_timeouts_ms: number[] | null;
    strace_note: string | null;
  };
  /** Namespaces or mounts of the bench's found after the clean-up (must be 0). */
  leftovers: number | null;
}

export const HOST_GOALS: Array<{ goal: string; key: keyof HostFigures | 'throughput.ratio_c50' | 'throughput.ratio_c1' | 'idle.cpu_s_per_60s' | 'idle.timer_wakeups'; op: '>=' | '<='; target: number }> = [
  { goal: 'host: RSS 50 guests / 1 guest, at start', key: 'rss_ratio_start', op: '<=', target: 1.3 },
  { goal: 'host: RSS 50 guests / 1 guest, after a refresh of all', key: 'rss_ratio_after_refresh', op: '<=', target: 1.3 },
  { goal: 'host: guest appears to first answer inside it (s, worst)', key: 'appear_max_s', op: '<=', target: 1 },
  { goal: 'host: GetSSHKeys c50 in a guest, host / in-guest daemon', key: 'throughput.ratio_c50', op: '>=', target: 0.9 },
  { goal: 'host: GetSSHKeys c1 in a guest, host / in-guest daemon', key: 'throughput.ratio_c1', op: '>=', target: 0.9 },
  { goal: 'host: idle CPU with 50 guests (s per 60 s)', key: 'idle.cpu_s_per_60s', op: '<=', target: 0.02 },
  { goal: 'host: timer wakeups while idle with 50 guests (strace)', key: 'idle.timer_wakeups', op: '<=', target: 0 },
];

export function hostGoalValue(f: HostFigures | null, key: (typeof HOST_GOALS)[number]['key']): number | null {
  if (!f) return null;
  const [a, b] = key.split('.') as [string, string | undefined];
  const v = b ? (f as unknown as Record<string, Record<string, unknown>>)[a]?.[b] : (f as unknown as Record<string, unknown>)[a];
  return typeof v === 'number' ? v : null;
}

// ---------------------------------------------------------------------------------------------
// Namespaces and mounts: removed in finally blocks, and on exit (also after Ctrl-C: lib.ts's
// SIGINT handler exits, which runs this).

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NETNS_LOAD = path.join(HERE, 'netns-load.js');
const FIXTURE = 'pg-vnode';
const PORT = 812;
const mounts = new Set<string>();
const ownDirs = new Set<string>();

function unmountSync(file: string): void {
  try {
    execFileSync('umount', [file], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('umount', ['-l', file], { stdio: 'ignore' });
    } catch {
      // not mounted (any more)
    }
  }
  mounts.delete(file);
  fs.rmSync(file, { force: true });
}
function cleanupSync(): void {
  for (const m of [...mounts]) unmountSync(m);
  for (const d of ownDirs) fs.rmSync(d, { recursive: true, force: true });
  ownDirs.clear();
}
process.on('exit', cleanupSync);

/** A directory for namespace files (never one of lib.ts's temp dirs: a mounted file cannot be removed). */
function nsDirectory(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  ownDirs.add(d);
  return d;
}
function removeNsDirectory(d: string): void {
  for (const m of [...mounts]) if (m.startsWith(`${d}/`)) unmountSync(m);
  fs.rmSync(d, { recursive: true, force: true });
  ownDirs.delete(d);
}

/** A persistent network namespace bound at `file`, as `ip netns add` makes one (the file first, then the mount). */
function makeNetns(file: string): void {
  fs.writeFileSync(file, '');
  mounts.add(file);
  execFileSync('unshare', [`--net=${file}`, 'true']);
}

/** Mounts of the bench's (namespace files under its directories) still in this mount namespace. */
function leftoverMounts(dirs: string[]): number {
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => dirs.some((d) => l.includes(` ${d}/`))).length;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const since = (t0: number, t: number): number => round((t - t0) / 1000, 3)!;

// ---------------------------------------------------------------------------------------------
// Guests

interface BenchGuest {
  readonly name: string;
  readonly slice: string;
  /** The guest's root (a copy of the fixture, busybox, /tmp). */
  readonly dir: string;
  /** Its network namespace file. */
  readonly ns: string;
  proc?: Child;
}

/** The guest's tree: pg-vnode with slice sl<i> (labpg3_sl<i>), busybox, an empty /tmp. */
function guestTree(base: string, i: number): { dir: string; slice: string } {
  const dir = path.join(base, 'root');
  fs.cpSync(path.join(projectDir, 'test', 'fixtures', FIXTURE), dir, { recursive: true });
  fs.rmSync(path.join(dir, 'expected.json'), { force: true });
  fs.rmSync(path.join(dir, 'usr'), { recursive: true, force: true }); // no geni-get: the slice comes from the nickname
  fs.writeFileSync(path.join(dir, 'var/emulab/boot/nickname'), `node2.sl${i}.lab-PG3\n`);
  fs.writeFileSync(path.join(dir, 'etc/hostname'), `node2.sl${i}.lab-pg3.clemson.cloudlab.us\n`);
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync('/usr/bin/busybox', path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  return { dir, slice: `labpg3_sl${i}` };
}

/** The guest's process in its namespace: own UTS and mount namespaces, lo up, tmpfs /tmp, chroot, sleep. */
function startGuestProc(g: BenchGuest): Child {
  const script = `ip link set lo up && hostname ${g.name} && mount -t tmpfs -o mode=1777 tmpfs '${g.dir}/tmp' && exec chroot '${g.dir}' /bin/busybox sleep 1000000`;
  // nsenter and unshare exec (no fork): the child's pid is the guest's process once chrooted.
  return startChild(`guest ${g.name}`, 'nsenter', [`--net=${g.ns}`, '--', 'unshare', '-u', '-m', 'sh', '-c', script]);
}

async function waitChrooted(g: BenchGuest, ms = 20_000): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    try {
      if (fs.readlinkSync(`/proc/${g.proc!.pid}/root`) === g.dir) return;
    } catch {
      // not yet, or gone
    }
    if (g.proc!.exitCode !== undefined) throw new Error(`guest ${g.name} exited: ${g.proc!.stderr.trim()}`);
    if (performance.now() > end) throw new Error(`guest ${g.name} not chrooted within ${ms} ms`);
    await sleep(10);
  }
}

async function removeGuest(g: BenchGuest): Promise<void> {
  if (g.proc) await stopChild(g.proc, 2000);
  unmountSync(g.ns);
}

/**
 * The client inside a guest: connects to 127.0.0.1:PORT every 5 ms until an HTTP 200 GetSSHKeys
 * reply naming WANT comes (HTTP/1.0, one connection per try), then prints one JSON line and exits.
 * BODY=1 adds the reply body. Plain CommonJS for the runtime's node, nothing loaded but `net`.
 */
const FIRST_ANSWER = `
const net = require('net');
const body = ${JSON.stringify(GETSSHKEYS_CALL)};
const want = process.env.WANT || '';
const deadline = Date.now() + Number(process.env.DEADLINE_MS || 30000);
const errors = {};
let connects = 0;
let empty = false;
console.log(JSON.stringify({ msg: 'started' }));
function attempt() {
  connects++;
  const c = net.connect({ host: '127.0.0.1', port: Number(process.env.PORT) });
  let out = '';
  let failed = false;
  const retry = (why) => {
    if (failed) return;
    failed = true;
    c.destroy();
    errors[why] = (errors[why] || 0) + 1;
    if (Date.now() > deadline) { console.log(JSON.stringify({ msg: 'answer', ok: false, connects, errors })); process.exit(1); }
    setTimeout(attempt, 5);
  };
  c.setTimeout(5000, () => retry('timeout'));
  c.on('connect', () => c.write('POST / HTTP/1.0\\r\\nContent-Type: text/xml\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n' + body));
  c.on('data', (d) => { out += d; });
  c.on('end', () => {
    if (/^HTTP\\/1\\.. 200/.test(out) && out.includes(want)) {
      const i = out.indexOf('\\r\\n\\r\\n');
      console.log(JSON.stringify({ msg: 'answer', ok: true, connects, errors, bytes: out.length - i - 4, ...(process.env.BODY ? { body: out.slice(i + 4) } : {}) }));
      process.exit(0);
    }
    if (/^HTTP\\/1\\.. 200/.test(out) && !empty) { empty = true; console.log(JSON.stringify({ msg: 'other answer', connects })); }
    retry('answer ' + out.slice(0, 12) + (/^HTTP\\/1\\.. 200/.test(out) ? ' without ' + want : ''));
  });
  c.on('error', (e) => retry(e.code || e.message));
}
attempt();
`;

function startClient(o: HostBenchOptions, ns: string, want: string, body = false): Child {
  return startChild('client in a guest', 'nsenter', [`--net=${ns}`, '--', o.runtime, '-e', FIRST_ANSWER], {
    env: { PORT: String(PORT), WANT: want, DEADLINE_MS: '30000', ...(body ? { BODY: '1' } : {}) },
  });
}

async function answerInside(o: HostBenchOptions, ns: string, want: string, body = false): Promise<{ at: number; line: Record<string, unknown> }> {
  const c = startClient(o, ns, want, body);
  try {
    const { line, at } = await waitForLine(c, (l) => l.msg === 'answer', 40_000);
    if (line['ok'] !== true) throw new Error(`no answer naming ${want} inside the guest: ${JSON.stringify(line)}`);
    return { at, line };
  } finally {
    await stopChild(c, 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// The host daemon

interface HostDaemon {
  child: Child;
  root: string;
  stateFile: string;
}

interface GuestsState {
  guests: Array<{ name: string; slice?: string; endpoints: string[]; present: boolean; lastRefresh?: string; problems: string[] }>;
}

function readState(d: HostDaemon): GuestsState | undefined {
  try {
    return JSON.parse(fs.readFileSync(d.stateFile, 'utf8')) as GuestsState;
  } catch {
    return undefined;
  }
}

/** Diagnosis only: node flags for the daemons measured (SLICEID_BENCH_NODE_FLAGS, e.g. --perf-basic-prof). */
function benchNodeFlags(): string[] {
  return (process.env['SLICEID_BENCH_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
}

async function startHostDaemon(o: HostBenchOptions, nsDir: string): Promise<HostDaemon & { startMs: number }> {
  const root = tempDir('sliceid-bench-host-');
  fs.mkdirSync(path.join(root, 'etc', 'sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc', 'sliceid', 'sliceid.toml'), `[host]\nnetns_dir = "${nsDir}"\n`);
  const t0 = performance.now();
  const child = startChild('sliceid run --host', o.runtime, [...benchNodeFlags(), o.cli, 'run', '--host', '--root', root, '--log-format', 'json'], { env: o.env });
  try {
    const { at } = await waitForLine(child, (l) => l.msg === 'host daemon serving', 300_000);
    return { child, root, stateFile: path.join(root, 'var', 'run', 'sliceid.guests'), startMs: at - t0 };
  } catch (err) {
    await stopChild(child, 5000);
    removeTempDir(root);
    throw err;
  }
}

/** Every guest present, refreshed after `after` (ms since the epoch, or 0), its slice right, 127.0.0.1:812 served. */
function allServed(d: HostDaemon, guests: BenchGuest[], after = 0): string | undefined {
  const st = readState(d);
  if (!st) return 'no state file';
  for (const g of guests) {
    const s = st.guests.find((x) => x.name === g.name);
    if (!s) return `${g.name}: not in the state file`;
    if (!s.present || s.slice !== g.slice || !s.endpoints.includes(`127.0.0.1:${PORT}`)) return `${g.name}: ${JSON.stringify(s)}`;
    if (after && !(s.lastRefresh && Date.parse(s.lastRefresh) >= after)) return `${g.name}: not refreshed yet`;
  }
  return undefined;
}

async function waitUntil(what: string, cond: () => string | undefined, ms: number): Promise<void> {
  const end = performance.now() + ms;
  let why: string | undefined;
  while ((why = cond()) !== undefined) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms (${why})`);
    await sleep(20);
  }
}

function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Load inside a network namespace

async function loadInNetns(ns: string, connections: number, durationS: number, serverPid: number, work: string): Promise<RawLoad> {
  const out = path.join(work, `lat-${process.hrtime.bigint()}.f64`);
  const cpu0 = serverCpuS(serverPid);
  const perfDir = process.env['SLICEID_BENCH_LOAD_PERF'];
  const perf = perfDir && connections === 50 ? startChild('perf', 'perf', ['record', '-F', '1999', '-g', '-p', String(serverPid), '-o', path.join(perfDir, `${serverPid}-${Date.now()}.perf`)]) : undefined;
  const c = startChild(`load c${connections}`, 'nsenter', [`--net=${ns}`, '--', process.execPath, NETNS_LOAD, '--port', String(PORT), '--connections', String(connections), '--duration', String(durationS), '--out', out]);
  try {
    const { line } = await waitForLine(c, (l) => l.msg === 'done', (durationS + 90) * 1000);
    const cpu1 = serverCpuS(serverPid);
    const buf = fs.readFileSync(out);
    const lat = Array.from(new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)));
    fs.rmSync(out, { force: true });
    return {
      lat,
      serverCpuS: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
      durationS: Number(line['durationS']),
      errors: Number(line['errors']),
      timeouts: Number(line['timeouts']),
      non2xx: Number(line['non2xx']),
    };
  } finally {
    await stopChild(c, 2000);
    if (perf) await stopChild(perf, 5000);
  }
}

// ---------------------------------------------------------------------------------------------
// strace: timers of an idle process

function straceTimers(file: string): { wakeups: number; syscalls: number; epollTimeouts: number[] } {
  let wakeups = 0;
  let syscalls = 0;
  const timeouts = new Set<number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(?:\[pid\s+\d+\]\s+|\d+\s+)?(?:\S+\s+)?(?:<\.\.\. )?(epoll_wait|epoll_pwait2?|futex|nanosleep|clock_nanosleep|timerfd_settime)\b(.*)$/.exec(line);
    if (!m) continue;
    const [, call, rest] = m as unknown as [string, string, string];
    const complete = /\)\s+=\s+(-?\d+|\?)/.exec(rest);
    if (call.startsWith('epoll')) {
      // epoll_pwait(fd, events, maxevents, timeout, ...): the timeout, when the arguments are shown.
      const args = /^\((\d+),\s*(\[.*?\]|0x[0-9a-f]+|\{.*?\}),\s*(\d+),\s*(-?\d+)/.exec(rest);
      if (args && Number(args[4]) >= 0) timeouts.add(Number(args[4]));
    }
    if (call === 'timerfd_settime') {
      wakeups++;
      syscalls++;
      continue;
    }
    if (!complete) continue;
    syscalls++;
    if (call.startsWith('epoll') && complete[1] === '0') wakeups++;
    else if (call === 'futex' && /ETIMEDOUT/.test(rest)) wakeups++;
    else if (call.endsWith('nanosleep')) wakeups++;
  }
  return { wakeups, syscalls, epollTimeouts: [...timeouts].sort((a, b) => a - b) };
}

function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------

function emptyFigures(): HostFigures {
  return {
    fixture: `test/fixtures/${FIXTURE} (slice labpg3_sl<i> per guest)`,
    counts: [],
    rss_ratio_start: null,
    rss_ratio_after_refresh: null,
    rss_mb_per_guest_after_refresh: null,
    node_daemon_rss_mb: null,
    node_daemon_rss_detail: null,
    appear_max_s: null,
    throughput: { guests: null, host: { c1: null, c50: null }, node: { c1: null, c50: null }, ratio_c1: null, ratio_c50: null, cpu_ratio_c50: null, same_data: null, response_bytes: null, host_rss_mb_after_load: null },
    idle: { guests: null, settle_cpu_ms: null, cpu_s_per_60s: null, ctx_switches_per_60s: null, measured_s: null, schedstat_cpu_s: null, threads: null, cpu_ms_by_second: null, strace_s: null, timer_wakeups: null, syscalls: null, epoll_timeouts_ms: null, strace_note: null },
    leftovers: null,
  };
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the host section needs root (network namespaces, mounts, chroot)');
  for (const tool of ['unshare', 'nsenter', 'ip', 'umount']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`the host section needs ${tool}`);
    }
  }
  if (!fs.existsSync('/usr/bin/busybox')) throw new Error('the host section needs /usr/bin/busybox (the guests are busybox chroots)');
  if (!fs.existsSync(NETNS_LOAD)) throw new Error(`${NETNS_LOAD} does not exist: npm run build`);
}

/** The node daemon (in-guest mode) on a copy of guest 1's tree, in a network namespace of its own (outside netns_dir). */
async function startNodeDaemon(o: HostBenchOptions, refDir: string, treeBase: string): Promise<{ child: Child; ns: string; dir: string }> {
  const { dir } = guestTree(treeBase, 1);
  const ns = path.join(refDir, 'in-guest');
  makeNetns(ns);
  execFileSync('nsenter', [`--net=${ns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
  const child = startChild('sliceid run (in-guest)', 'nsenter', [`--net=${ns}`, '--', o.runtime, ...benchNodeFlags(), o.cli, 'run', '--root', dir, '--port', String(PORT), '--socket', path.join(dir, 'tmp', 'nodemanager.api')], { env: o.env });
  try {
    await waitForLine(child, (l) => l.msg === 'ready', 120_000);
  } catch (err) {
    await stopChild(child, 5000);
    throw err;
  }
  return { child, ns, dir };
}

export async function benchHost(o: HostBenchOptions): Promise<HostFigures> {
  preflight();
  const f = emptyFigures();
  const counts = o.counts ?? [1, 10, 50];
  const maxN = Math.max(...counts);
  const appearTries = 3;
  const work = tempDir('sliceid-bench-hostwork-');
  const nsDirs: string[] = [];
  try {
    for (const n of counts) {
      const nsDir = nsDirectory('sliceid-bench-netns-');
      nsDirs.push(nsDir);
      const fig: HostCount = {
        guests: n,
        start_s: null,
        rss_mb_start: null,
        rss_mb_after_refresh: null,
        refresh_all_s: null,
        in_guest_rss_mb: null,
        rss_detail_start: null,
        rss_detail_after_refresh: null,
        fds: null,
        threads: null,
        appear_s: [],
        appear_median_s: null,
        appear_max_s: null,
        appear_detail: [],
        stop_ms: null,
      };
      f.counts.push(fig);
      const guests: BenchGuest[] = [];
      let d: (HostDaemon & { startMs: number }) | undefined;
      try {
        o.note(`host: ${n} guest(s): trees, namespaces, processes`);
        for (let i = 1; i <= n; i++) {
          const { dir, slice } = guestTree(path.join(work, `n${n}-g${i}`), i);
          const g: BenchGuest = { name: `g${String(i).padStart(3, '0')}`, slice, dir, ns: path.join(nsDir, `g${String(i).padStart(3, '0')}`) };
          makeNetns(g.ns);
          g.proc = startGuestProc(g);
          guests.push(g);
        }
        for (const g of guests) await waitChrooted(g);
        d = await startHostDaemon(o, nsDir);
        fig.start_s = round(d.startMs / 1000, 2);
        o.note(`  host daemon serving ${n} guest(s) after ${fig.start_s} s`);
        await waitUntil('every guest served', () => allServed(d!, guests), 30_000);
        // From inside: the first and the last guest answer their own slice.
        for (const g of new Set([guests[0]!, guests[guests.length - 1]!])) await answerInside(o, g.ns, `<name>${g.slice}</name>`);
        await sleep(500);
        fig.rss_mb_start = rssMb(d.child.pid);
        fig.rss_detail_start = rssDetail(d.child.pid);

        // One refresh of every guest: SIGHUP, done when the state file shows each refreshed.
        const hupAt = Date.now();
        const t0 = performance.now();
        d.child.proc.kill('SIGHUP');
        await waitUntil('every guest refreshed after SIGHUP', () => allServed(d!, guests, hupAt), 120_000);
        fig.refresh_all_s = round((performance.now() - t0) / 1000, 3);
        await sleep(500);
        fig.rss_mb_after_refresh = rssMb(d.child.pid);
        fig.rss_detail_after_refresh = rssDetail(d.child.pid);
        fig.fds = fdCount(d.child.pid);
        fig.threads = procSample(d.child.pid).threads;
        o.note(`  RSS ${fig.rss_mb_start} MB at start, ${fig.rss_mb_after_refresh} MB after a refresh of all (${fig.refresh_all_s} s); ${fig.fds} fds, ${fig.threads} threads`);

        // A guest appears: namespace file, a client in it, the guest's process; to the first answer inside.
        for (let k = 0; k < appearTries; k++) {
          const i = n + 1 + k;
          const name = `a${String(i).padStart(3, '0')}`;
          const { dir, slice } = guestTree(path.join(work, `n${n}-${name}`), i);
          const g: BenchGuest = { name, slice, dir, ns: path.join(nsDir, name) };
          const from = d.child.lines.length;
          const t0a = performance.now();
          makeNetns(g.ns);
          const client = startClient(o, g.ns, `<name>${slice}</name>`);
          g.proc = startGuestProc(g);
          try {
            const { line, at } = await waitForLine(client, (l) => l.msg === 'answer', 40_000);
            if (line['ok'] !== true) throw new Error(`guest ${name}: no answer inside within 30 s: ${JSON.stringify(line)}`);
            const started = client.lines.findIndex((l) => l.msg === 'started');
            const other = client.lines.findIndex((l) => l.msg === 'other answer');
            const daemonLine = (msg: string): number | null => {
              for (let j = from; j < d!.child.lines.length; j++) {
                const l = d!.child.lines[j]!;
                if (l.msg === msg && l['guest'] === name) return since(t0a, d!.child.lineTimes[j]!);
              }
              return null;
            };
            const s = since(t0a, at);
            fig.appear_s.push(s);
            fig.appear_detail.push({
              appeared_s: daemonLine('guest appeared'),
              served_s: daemonLine('guest served'),
              client_started_s: started >= 0 ? since(t0a, client.lineTimes[started]!) : null,
              other_answer_s: other >= 0 ? since(t0a, client.lineTimes[other]!) : null,
              answered_s: s,
              connects: Number(line['connects']),
              errors: line['errors'] as Record<string, number>,
            });
            o.note(`  guest ${name} appeared: answered inside after ${s} s (${JSON.stringify(fig.appear_detail.at(-1))})`);
          } finally {
            await stopChild(client, 1000);
            const gone = d.child.lines.length;
            await removeGuest(g);
            // The daemon closes its listeners; wait for that before the next try.
            await waitForLine(d.child, (l) => typeof l.msg === 'string' && l.msg.startsWith('guest went away') && l['guest'] === name, 20_000, gone).catch(() => o.note(`  (the daemon did not log ${name} going away)`));
          }
        }
        fig.appear_median_s = round(median(fig.appear_s), 3);
        fig.appear_max_s = round(Math.max(...fig.appear_s), 3);

        if (n === maxN) {
          await idle(o, f, d, n, work);
          await throughput(o, f, d, guests[0]!, n, work);
        }

        const before = d.child.lines.length;
        const stopMs = await stopChild(d.child, 10_000);
        fig.stop_ms = round(stopMs, 0);
        if (stopMs > 5000) o.note(`  WARNING: the host daemon took ${Math.round(stopMs)} ms to stop (SIGKILL after 10 s); its last lines: ${d.child.lines.slice(before).map((l) => JSON.stringify(l)).join(' ').slice(-1500)} stderr: ${d.child.stderr.slice(-500)}`);
        removeTempDir(d.root);
        d = undefined;
      } finally {
        if (d) {
          await stopChild(d.child, 10_000);
          removeTempDir(d.root);
        }
        await Promise.all(guests.map((g) => removeGuest(g)));
        removeNsDirectory(nsDir);
      }
    }
  } finally {
    removeTempDir(work);
    f.leftovers = leftoverMounts(nsDirs);
    for (const dir of nsDirs) removeNsDirectory(dir);
  }
  const one = f.counts.find((c) => c.guests === Math.min(...counts));
  const most = f.counts.find((c) => c.guests === maxN);
  if (one && most && one !== most) {
    if (one.rss_mb_start && most.rss_mb_start) f.rss_ratio_start = round(most.rss_mb_start / one.rss_mb_start, 3);
    if (one.rss_mb_after_refresh && most.rss_mb_after_refresh) {
      f.rss_ratio_after_refresh = round(most.rss_mb_after_refresh / one.rss_mb_after_refresh, 3);
      f.rss_mb_per_guest_after_refresh = round((most.rss_mb_after_refresh - one.rss_mb_after_refresh) / (most.guests - one.guests), 2);
    }
  }
  for (const c of f.counts) c.in_guest_rss_mb = f.node_daemon_rss_mb !== null ? round(f.node_daemon_rss_mb * c.guests, 1) : null;
  const all = f.counts.flatMap((c) => c.appear_s);
  f.appear_max_s = all.length ? round(Math.max(...all), 3) : null;
  return f;
}

async function idle(o: HostBenchOptions, f: HostFigures, d: HostDaemon, n: number, work: string): Promise<void> {
  const pid = d.child.pid;
  o.note(`host: idle with ${n} guests: settle ${o.idleSettleS} s, then ${o.idleS} s`);
  // The settle is measured too: what the daemon spends after the last guest event (its own
  // compacting collection when the queue drains, and V8's memory reducer, which runs one more
  // collection ~8 s after the last full one) is reported apart from the idle window.
  const s0 = procSample(pid);
  await sleep(o.idleSettleS * 1000);
  f.idle.settle_cpu_ms = round((procSample(pid).schedCpuS - s0.schedCpuS) * 1000, 1);
  // Diagnosis only (SLICEID_BENCH_IDLE_TRACE=perf|strace): record the whole window into the
  // project's .tmp/ (never a fixed name in /tmp, where anyone may have put a symlink first).
  const traceKind = process.env['SLICEID_BENCH_IDLE_TRACE'];
  const traceOut = path.join(projectDir, '.tmp', `host-idle.${traceKind}`);
  if (traceKind === 'perf' || traceKind === 'strace') fs.mkdirSync(path.dirname(traceOut), { recursive: true });
  const tracer = traceKind === 'perf'
    ? startChild('perf', 'perf', ['record', '-F', '997', '-g', '-p', String(pid), '-o', traceOut])
    : traceKind === 'strace' ? startChild('strace', 'strace', ['-f', '-tt', '-T', '-o', traceOut, '-p', String(pid)]) : undefined;
  if (tracer) await sleep(1000);
  const a = procSample(pid);
  const t0 = performance.now();
  // Sampled each second (reading /proc costs the daemon nothing): when the CPU time was spent.
  let prev = a;
  const spent: Array<[number, number]> = [];
  for (let k = 1; k <= o.idleS; k++) {
    await sleep(Math.max(0, t0 + k * 1000 - performance.now()));
    const now = procSample(pid);
    const ms = (now.schedCpuS - prev.schedCpuS) * 1000;
    if (ms >= 0.5) spent.push([k, round(ms, 1)!]);
    prev = now;
  }
  const b = prev;
  if (tracer) await stopChild(tracer, 5000);
  const s = (performance.now() - t0) / 1000;
  const i = f.idle;
  i.guests = n;
  i.measured_s = round(s, 2);
  i.cpu_s_per_60s = round(Math.max(b.taskCpuS - a.taskCpuS, b.procCpuS - a.procCpuS) * (60 / s), 3);
  i.ctx_switches_per_60s = round((b.ctxSwitches - a.ctxSwitches) * (60 / s), 0);
  i.schedstat_cpu_s = round(b.schedCpuS - a.schedCpuS, 4);
  i.threads = b.threads;
  i.cpu_ms_by_second = spent;
  o.note(`  idle: ${i.cpu_s_per_60s} s CPU per 60 s, ${i.ctx_switches_per_60s} context switches (schedstat ${i.schedstat_cpu_s} s); settle ${i.settle_cpu_ms} ms CPU`);
  if (!hasStrace()) {
    i.strace_note = 'strace not installed: timers not checked';
    return;
  }
  // After the CPU window: attaching stops every thread once.
  const straceS = o.quick ? 3 : 5;
  const out = path.join(work, 'strace.txt');
  const st = startChild('strace', 'strace', ['-f', '-tt', '-o', out, '-e', 'trace=epoll_wait,epoll_pwait,epoll_pwait2,futex,nanosleep,clock_nanosleep,timerfd_settime', '-p', String(pid)]);
  try {
    await sleep(straceS * 1000);
  } finally {
    await stopChild(st, 3000);
  }
  const t = straceTimers(out);
  i.strace_s = straceS;
  i.timer_wakeups = t.wakeups;
  i.syscalls = t.syscalls;
  i.epoll_timeouts_ms = t.epollTimeouts;
  i.strace_note = `strace -f on ${b.threads} threads for ${straceS} s`;
  if (t.wakeups > 0) {
    fs.copyFileSync(out, path.join(projectDir, 'bench', 'host-idle-strace.txt'));
    i.strace_note += '; the trace is kept in bench/host-idle-strace.txt';
  }
  o.note(`  strace ${straceS} s: ${t.syscalls} syscalls completed, ${t.wakeups} timer wakeups, finite epoll timeouts ${JSON.stringify(t.epollTimeouts)}`);
}

async function throughput(o: HostBenchOptions, f: HostFigures, d: HostDaemon, g: BenchGuest, n: number, work: string): Promise<void> {
  const refDir = nsDirectory('sliceid-bench-netns-ref-');
  let node: Awaited<ReturnType<typeof startNodeDaemon>> | undefined;
  const t = f.throughput;
  t.guests = n;
  try {
    o.note('host: the in-guest reference: sliceid run on a copy of the first guest\'s tree, in a namespace of its own');
    node = await startNodeDaemon(o, refDir, path.join(work, 'in-guest'));
    await sleep(500);
    f.node_daemon_rss_mb = rssMb(node.child.pid);
    f.node_daemon_rss_detail = rssDetail(node.child.pid);
    const hostReply = await answerInside(o, g.ns, `<name>${g.slice}</name>`, true);
    const nodeReply = await answerInside(o, node.ns, `<name>${g.slice}</name>`, true);
    const hb = String(hostReply.line['body']);
    const nb = String(nodeReply.line['body']);
    t.same_data = JSON.stringify(parseKeysResponse(hb)) === JSON.stringify(parseKeysResponse(nb));
    t.response_bytes = Buffer.byteLength(hb);
    if (!t.same_data) o.note('  WARNING: the host daemon and the in-guest daemon do not answer the same data');
    type Name = 'host' | 'node';
    const servers: Array<[Name, string, number]> = [
      ['host', g.ns, d.child.pid],
      ['node', node.ns, node.child.pid],
    ];
    for (const [name, ns, pid] of servers) {
      o.note(`  warm-up ${name} (${o.warmupS} s, 50 connections)`);
      await loadInNetns(ns, 50, o.warmupS, pid, work);
    }
    for (const c of [1, 50] as const) {
      const raws = new Map<Name, RawLoad[]>(servers.map(([nm]) => [nm, []]));
      o.note(`  load inside the guests at ${c} connection(s): ${o.loadRounds} rounds of ${o.loadS / o.loadRounds} s per server`);
      for (let r = 0; r < o.loadRounds; r++) {
        for (let k = 0; k < servers.length; k++) {
          const [name, ns, pid] = servers[(k + r) % servers.length]!;
          raws.get(name)!.push(await loadInNetns(ns, c, o.loadS / o.loadRounds, pid, work));
        }
      }
      for (const [name] of servers) {
        const fig = summarize(raws.get(name)!, c, `host section ${name} c${c}`, o.note);
        t[name][`c${c}`] = fig;
        o.note(`  ${name} c${c}: ${fig.rps} req/s, p50 ${fig.p50_ms} ms, p99 ${fig.p99_ms} ms, server CPU ${fig.cpu_us_per_req} us/req, errors ${fig.errors + fig.non2xx + fig.timeouts}`);
      }
    }
    const ratio = (a: LoadFigures | null, b: LoadFigures | null): number | null => (a?.rps && b?.rps ? round(a.rps / b.rps, 3) : null);
    t.ratio_c1 = ratio(t.host.c1, t.node.c1);
    t.ratio_c50 = ratio(t.host.c50, t.node.c50);
    t.cpu_ratio_c50 = t.host.c50?.cpu_us_per_req && t.node.c50?.cpu_us_per_req ? round(t.node.c50.cpu_us_per_req / t.host.c50.cpu_us_per_req, 3) : null;
    t.host_rss_mb_after_load = rssMb(d.child.pid);
  } finally {
    if (node) await stopChild(node.child, 5000);
    removeNsDirectory(refDir);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined) return 'n/a';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

export function reportHost(f: HostFigures | null): string[] {
  if (!f) return [];
  const L: string[] = [];
  L.push(`Shared host (issue 23): sliceid run --host, busybox chroot guests (${f.fixture}) in their own net/UTS/mount namespaces, found in netns_dir`);
  L.push('  guests  start s  RSS MB start  after refresh  refresh s  in-guest N x daemon  fds  threads  first answer s (median / max)  stop ms');
  for (const c of f.counts) {
    L.push(
      `  ${String(c.guests).padStart(6)} ${fmt(c.start_s).padStart(8)} ${fmt(c.rss_mb_start, 1).padStart(13)} ${fmt(c.rss_mb_after_refresh, 1).padStart(14)} ${fmt(c.refresh_all_s).padStart(10)} ${fmt(c.in_guest_rss_mb, 1).padStart(20)} ${String(c.fds ?? 'n/a').padStart(4)} ${String(c.threads ?? 'n/a').padStart(8)} ${`${fmt(c.appear_median_s, 3)} / ${fmt(c.appear_max_s, 3)}`.padStart(30)} ${fmt(c.stop_ms, 0).padStart(8)}`,
    );
  }
  L.push(`  RSS most / one guest: at start ${fmt(f.rss_ratio_start, 3)}x, after a refresh ${fmt(f.rss_ratio_after_refresh, 3)}x (${fmt(f.rss_mb_per_guest_after_refresh)} MB per guest); one in-guest node daemon ${fmt(f.node_daemon_rss_mb, 1)} MB`);
  const most = f.counts.at(-1);
  if (most?.rss_detail_after_refresh) L.push(`  host daemon with ${most.guests} guests after refresh: ${Object.entries(most.rss_detail_after_refresh).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')}`);
  for (const c of f.counts) {
    const d = c.appear_detail;
    if (d.length) L.push(`  appearance with ${c.guests} guest(s) already served (s after the namespace file): ${d.map((x) => `appeared ${fmt(x.appeared_s, 3)}, served ${fmt(x.served_s, 3)}, answered ${fmt(x.answered_s, 3)} (client up ${fmt(x.client_started_s, 3)}, ${x.connects} connects${x.other_answer_s !== null ? `, a 200 without its slice at ${fmt(x.other_answer_s, 3)}` : ''})`).join('; ')}`);
  }
  const t = f.throughput;
  L.push(`  GetSSHKeys inside a guest (autocannon in its network namespace; host daemon serving ${t.guests ?? 'n/a'} guests vs sliceid run in-guest; same data: ${String(t.same_data)}, ${t.response_bytes ?? 'n/a'} bytes)`);
  L.push('    server                  conns     req/s   p50 ms   p99 ms  CPU us/req   errors');
  for (const name of ['host', 'node'] as const) {
    for (const c of ['c1', 'c50'] as const) {
      const x = t[name][c];
      L.push(`    ${(name === 'host' ? 'host daemon' : 'in-guest daemon').padEnd(22)} ${c.slice(1).padStart(5)} ${fmt(x?.rps).padStart(9)} ${fmt(x?.p50_ms, 3).padStart(8)} ${fmt(x?.p99_ms, 3).padStart(8)} ${fmt(x?.cpu_us_per_req, 1).padStart(11)} ${String(x ? x.errors + x.non2xx + x.timeouts : 'n/a').padStart(8)}`);
    }
  }
  L.push(`    host / in-guest: c1 ${fmt(t.ratio_c1, 3)}x, c50 ${fmt(t.ratio_c50, 3)}x; server CPU per call in-guest / host at c50 ${fmt(t.cpu_ratio_c50, 3)}; host daemon RSS after the load ${fmt(t.host_rss_mb_after_load, 1)} MB`);
  const i = f.idle;
  L.push(`  Idle with ${i.guests ?? 'n/a'} guests over ${fmt(i.measured_s, 1)} s (after a settle of ${fmt(i.settle_cpu_ms, 1)} ms CPU), scaled to 60 s: CPU ${fmt(i.cpu_s_per_60s, 3)} s, ${fmt(i.ctx_switches_per_60s, 0)} context switches (${String(i.threads ?? 'n/a')} threads; schedstat ${fmt(i.schedstat_cpu_s, 4)} s; CPU ms by second of the window: ${(i.cpu_ms_by_second ?? []).map(([k, ms]) => `${k}: ${ms}`).join(', ') || 'none'})`);
  L.push(`    ${i.strace_note ?? 'strace: n/a'}: ${String(i.syscalls ?? 'n/a')} syscalls completed, ${String(i.timer_wakeups ?? 'n/a')} timer wakeups, finite epoll timeouts ${JSON.stringify(i.epoll_timeouts_ms ?? [])}`);
  L.push(`  namespaces/mounts left after the clean-up: ${String(f.leftovers ?? 'n/a')}`, '');
  return L;
}
