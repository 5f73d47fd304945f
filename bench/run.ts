// npm run bench [-- --quick] [--out FILE] [--cli FILE] [--runs N] [--only api,idle,scale,cold]
//
// What ships is measured: `npm run bench` stages the package tree (packaging/stage.sh: the bundle
// as its entry, better-sqlite3 built for the runtime, the Node runtime the packages carry) and
// runs it with that runtime (--staged DIR); the references (bare node:http, `node -e 0`) run on the
// same runtime. `node dist/bench/run.js` alone measures the checkout on the node that runs it.
//
// Measures sliceid beside references started in the same run and reports ratios (see
// bench/README.md): GetSSHKeys throughput/latency against a NodeManager-style Python server and a
// bare node:http server, start-up against `node -e 0`, RSS, idle cost, and a 10,000-user refresh.
// Every server is a child process on 127.0.0.1; every loop is bounded; every child is killed at
// the end, also on error or Ctrl-C.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  GETSSHKEYS_CALL,
  accountsFile,
  median,
  parseKeysResponse,
  procSample,
  projectDir,
  quantile,
  removeTempDir,
  round,
  rpc,
  rssDetail,
  rssMb,
  startChild,
  stopChild,
  tcpConnect,
  tempDir,
  waitForLine,
  type Child,
  type RssDetail,
} from './lib.js';
import { benchSshd, reportSshd, SSHD_GOALS, type SshdFigures } from './sshd.js';
import { loadRaw, summarize, type LoadFigures, type RawLoad } from './load.js';
import { benchHost, hostGoalValue, reportHost, HOST_GOALS, type HostFigures } from './host.js';

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    cli: { type: 'string' },
    staged: { type: 'string' },
    runtime: { type: 'string' },
    fixture: { type: 'string' },
    runs: { type: 'string' },
    only: { type: 'string' },
    guests: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (argv.help) {
  process.stdout.write('usage: npm run bench [-- --quick] [--out FILE] [--staged LIBDIR] [--runtime NODE] [--cli bin/sliceid.js] [--fixture DIR] [--runs N] [--only api,idle,scale,cold,sshd,host] [--guests 1,10,50]\n');
  process.exit(0);
}

const QUICK = argv.quick;
const CFG = {
  loadS: QUICK ? 3 : 10,
  loadRounds: QUICK ? 3 : 2,
  warmupS: 1,
  idleS: QUICK ? 20 : 60,
  // Past V8's memory reducer: one collection ~8 s after the last full one, once after activity.
  idleSettleS: 10,
  coldRuns: Math.max(10, Number(argv.runs ?? 10) || 10),
  scaleUsers: 10_000,
  scaleKeysPer: 3,
  scaleCalls: QUICK ? 20 : 50,
  readyTimeoutMs: 120_000,
  refreshTimeoutMs: 120_000,
};
/** What packaging/sliceid.sh sets before it starts node (keep the two in step). */
const DEPLOYED_ENV = { MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2' };
const SECTIONS = new Set((argv.only ?? 'api,idle,scale,cold,sshd,host').split(',').map((s) => s.trim()));
// What ships (--staged, as npm run bench passes it): the staged package tree's bin/sliceid.js, which
// runs its bundle (marked as the package's entry), on the runtime the package carries.
const STAGED = argv.staged ? path.resolve(argv.staged) : undefined;
const RUNTIME = path.resolve(argv.runtime ?? (STAGED ? path.join(STAGED, 'runtime', 'bin', 'node') : process.execPath));
const CLI = path.resolve(argv.cli ?? path.join(STAGED ?? projectDir, 'bin', 'sliceid.js'));
const BUNDLED = !argv.cli && STAGED !== undefined && fs.existsSync(path.join(STAGED, 'dist', 'bundle', 'ENTRY'));
const RUNTIME_VERSION = execFileSync(RUNTIME, ['--version'], { encoding: 'utf8' }).trim();
const FIXTURE = path.resolve(argv.fixture ?? path.join(projectDir, 'test', 'fixtures', 'emulab-pnode'));
const OUT = path.resolve(argv.out ?? path.join(projectDir, 'bench', 'results.json'));
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BARE_HTTP = path.join(HERE, 'bare-http.js');
const NM_REFERENCE = path.join(projectDir, 'bench', 'nm-reference.py');
const GID_FILES = ['etc/slicename', 'etc/slice.gid', 'etc/node.gid'];

const benchStart = performance.now();
const note = (s: string): void => {
  process.stderr.write(`[bench ${((performance.now() - benchStart) / 1000).toFixed(1).padStart(6)}s] ${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Results

type ServerLoad = { c1: LoadFigures | null; c50: LoadFigures | null };

const results = {
  machine: machineInfo(),
  config: { quick: QUICK, ...CFG, cli: path.relative(projectDir, CLI) || CLI, bundle: BUNDLED, runtime: { path: RUNTIME, version: RUNTIME_VERSION }, fixture: path.relative(projectDir, FIXTURE) || FIXTURE },
  api: {
    sliceid: { c1: null, c50: null } as ServerLoad,
    nm_reference: { c1: null, c50: null } as ServerLoad,
    bare_http: { c1: null, c50: null } as ServerLoad,
    nm_reference_keepalive: { c1: null, c50: null } as ServerLoad,
    sliceid_close: { c1: null, c50: null } as ServerLoad,
    ratio_vs_nm_c50: null as number | null,
    ratio_vs_bare_c50: null as number | null,
    ratio_vs_nm_c1: null as number | null,
    ratio_vs_bare_c1: null as number | null,
    ratio_vs_nm_keepalive_c50: null as number | null,
    ratio_close_vs_nm_c50: null as number | null,
    /** Server CPU per reply, reference / sliceid at 50 connections (noise-robust companions). */
    cpu_ratio_vs_nm_c50: null as number | null,
    cpu_ratio_vs_bare_c50: null as number | null,
    response_bytes: null as number | null,
    same_data: null as boolean | null,
  },
  cold_start: {
    fresh_ms: null as number | null,
    warm_ms: null as number | null,
    node_baseline_ms: null as number | null,
    warm_ratio: null as number | null,
    fresh_ratio: null as number | null,
    stop_ms: null as number | null,
    runs: CFG.coldRuns,
    samples: { fresh: [] as number[], warm: [] as number[], node: [] as number[] },
  },
  rss_mb: {
    start: null as number | null,
    after_load: null as number | null,
    nm_reference_after_load: null as number | null,
    nm_reference_keepalive_after_load: null as number | null,
    bare_http_after_load: null as number | null,
    /** The bare node:http server 0.5 s after it is ready, as sliceid's `start`. */
    bare_http_start: null as number | null,
    /** start - bare_http_start (issue 15: <= 10). */
    start_minus_bare_start: null as number | null,
    /** after_load / bare_http_after_load (issue 15: <= 1.1). */
    after_load_vs_bare: null as number | null,
    /** Where sliceid's resident set is at start and after load: /proc/<pid>/smaps by mapping. */
    start_detail: null as RssDetail | null,
    after_load_detail: null as RssDetail | null,
  },
  idle: {
    cpu_s_per_60s: null as number | null,
    ctx_switches_per_60s: null as number | null,
    measured_s: null as number | null,
    task_stat_cpu_s: null as number | null,
    process_stat_cpu_s: null as number | null,
    schedstat_cpu_s: null as number | null,
    threads: null as number | null,
  },
  scale_10k: {
    refresh_s: null as number | null,
    refresh_logged_ms: null as number | null,
    getsshkeys_ms: null as number | null,
    /** Rename to the log line saying the 10,000 users' sshd key files are written (the refresh's last step). */
    sshd_files_s: null as number | null,
    getsshkeys_p90_ms: null as number | null,
    nm_reference_getsshkeys_ms: null as number | null,
    rss_mb: null as number | null,
    users: null as number | null,
    keys: null as number | null,
    response_bytes: null as number | null,
    /** rss_mb / rss_mb.start (issue 15: <= 1.5). */
    rss_vs_start: null as number | null,
    rss_detail: null as RssDetail | null,
  },
  sshd: null as SshdFigures | null,
  host: null as HostFigures | null,
  goals: [] as Array<{ goal: string; key: string; op: '>=' | '<='; target: number; value: number | null; met: boolean | null }>,
  errors: {} as Record<string, string>,
  elapsed_s: 0,
};

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  let python: string | null = null;
  try {
    python = execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* reported as null */
  }
  return {
    cpu_model: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node_version: process.version,
    python,
    kernel: `${os.type()} ${os.release()}`,
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    loadavg_at_start: os.loadavg().map((x) => round(x, 2)),
    date: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// sliceid as a child

interface Daemon {
  child: Child;
  port: number;
  root: string;
}

function prepareTree(): string {
  if (!fs.existsSync(path.join(FIXTURE, 'var', 'emulab', 'boot'))) throw new Error(`${FIXTURE}: not a node tree (no var/emulab/boot)`);
  const root = tempDir('sliceid-bench-');
  fs.cpSync(FIXTURE, root, { recursive: true, filter: (src) => path.basename(src) !== 'expected.json' });
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  return root;
}

/** Start sliceid on root; resolves once the ready line is out, the three files exist and the port accepts. */
async function startSliceid(root: string, label: string): Promise<Daemon & { startMs: number }> {
  const built = argv.cli ? CLI : BUNDLED ? path.join(STAGED!, 'dist', 'bundle', 'cli.js') : path.join(STAGED ?? projectDir, 'dist', 'src', 'cli.js');
  if (!fs.existsSync(built)) throw new Error(`${built} does not exist: run npm run build (the daemon may not have landed yet), or pass --cli`);
  const t0 = performance.now();
  // The environment /usr/bin/sliceid (packaging/sliceid.sh) gives the daemon on a node.
  const child = startChild(`sliceid(${label})`, RUNTIME, [CLI, 'run', '--root', root, '--port', '0', '--socket', path.join(root, 'tmp', 'nodemanager.api')], {
    env: DEPLOYED_ENV,
  });
  try {
    const { line } = await waitForLine(child, (l) => l.msg === 'ready', CFG.readyTimeoutMs);
    const port = Number(line['port']);
    if (!Number.isInteger(port) || port <= 0) throw new Error(`ready line has no port: ${JSON.stringify(line)}`);
    for (let i = 0; ; i++) {
      const missing = GID_FILES.filter((f) => !fs.existsSync(path.join(root, f)));
      if (missing.length === 0) break;
      if (i >= 500) throw new Error(`ready, but not written after 5 s more: ${missing.join(', ')}`);
      await sleep(10);
    }
    await tcpConnect(port);
    return { child, port, root, startMs: performance.now() - t0 };
  } catch (err) {
    await stopChild(child, 1000);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

async function sectionApi(d: Daemon): Promise<void> {
  const work = tempDir('sliceid-bench-refs-');
  const first = await rpc(d.port);
  if (first.status !== 200) throw new Error(`sliceid GetSSHKeys: HTTP ${first.status}: ${first.body.toString().slice(0, 300)}`);
  const mine = parseKeysResponse(first.body.toString('utf8'));
  if (Object.keys(mine).length === 0) throw new Error('sliceid GetSSHKeys: empty struct (the fixture should give keys)');
  const bodyFile = path.join(work, 'getsshkeys.xml');
  fs.writeFileSync(bodyFile, first.body);
  results.api.response_bytes = first.body.length;

  const refs: Child[] = [];
  try {
    // NodeManager as it serves: HTTP/1.0, one connection per call. And its best case, keep-alive.
    const nm = startChild('nm-reference', 'python3', [NM_REFERENCE, '--data', bodyFile, '--port', '0']);
    refs.push(nm);
    const nmKa = startChild('nm-reference(keep-alive)', 'python3', [NM_REFERENCE, '--data', bodyFile, '--port', '0', '--keep-alive']);
    refs.push(nmKa);
    const bare = startChild('bare-http', RUNTIME, [BARE_HTTP, '--body', bodyFile, '--port', '0'], { env: DEPLOYED_ENV });
    refs.push(bare);
    const portOf = async (c: Child): Promise<number> => Number((await waitForLine(c, (l) => l.msg === 'ready', 20_000)).line['port']);
    const nmPort = await portOf(nm);
    const nmKaPort = await portOf(nmKa);
    const barePort = await portOf(bare);
    // Its resident set at start, taken as sliceid's is: 0.5 s after the ready line.
    await sleep(500);
    results.rss_mb.bare_http_start = rssMb(bare.pid);

    // Same data from all of them.
    const nmData = parseKeysResponse((await rpc(nmPort)).body.toString('utf8'));
    const nmKaData = parseKeysResponse((await rpc(nmKaPort)).body.toString('utf8'));
    const bareReply = await rpc(barePort);
    results.api.same_data =
      JSON.stringify(nmData) === JSON.stringify(mine) && JSON.stringify(nmKaData) === JSON.stringify(mine) && bareReply.body.equals(first.body);
    if (!results.api.same_data) note('WARNING: the references do not answer the same data as sliceid');

    type Name = 'sliceid' | 'nm_reference' | 'bare_http' | 'nm_reference_keepalive' | 'sliceid_close';
    const servers: Array<[Name, number, boolean, number]> = [
      ['sliceid', d.port, false, d.child.pid],
      ['nm_reference', nmPort, false, nm.pid],
      ['bare_http', barePort, false, bare.pid],
      ['nm_reference_keepalive', nmKaPort, false, nmKa.pid],
      ['sliceid_close', d.port, true, d.child.pid],
    ];
    for (const [name, port, close] of servers.slice(0, 4)) {
      note(`warm-up ${name} (${CFG.warmupS} s, 50 connections)`);
      await loadRaw(port, 50, CFG.warmupS, close);
    }
    // Each server's time at each connection count is split into rounds that take turns, the order
    // rotating each round, so that a slow spell of this shared machine is spread over all servers.
    for (const c of [1, 50] as const) {
      const raws = new Map<Name, RawLoad[]>(servers.map(([n]) => [n, []]));
      note(`load at ${c} connection(s): ${CFG.loadRounds} rounds of ${CFG.loadS / CFG.loadRounds} s per server`);
      for (let round = 0; round < CFG.loadRounds; round++) {
        for (let k = 0; k < servers.length; k++) {
          const [name, port, close, pid] = servers[(k + round) % servers.length]!;
          raws.get(name)!.push(await loadRaw(port, c, CFG.loadS / CFG.loadRounds, close, pid));
        }
      }
      for (const [name] of servers) {
        const fig = summarize(raws.get(name)!, c, `${name} c${c}`, note);
        results.api[name][`c${c}`] = fig;
        note(`  ${name} c${c}: ${fig.rps} req/s, p50 ${fig.p50_ms} ms, p99 ${fig.p99_ms} ms, server CPU ${fig.cpu_us_per_req} us/req, errors ${fig.errors}, non2xx ${fig.non2xx}`);
      }
    }
    results.rss_mb.after_load = rssMb(d.child.pid);
    results.rss_mb.after_load_detail = rssDetail(d.child.pid);
    results.rss_mb.nm_reference_after_load = rssMb(nm.pid);
    results.rss_mb.nm_reference_keepalive_after_load = rssMb(nmKa.pid);
    results.rss_mb.bare_http_after_load = rssMb(bare.pid);
    const r = (a: LoadFigures | null, b: LoadFigures | null): number | null => (a?.rps && b?.rps ? round(a.rps / b.rps, 3) : null);
    const api = results.api;
    api.ratio_vs_nm_c50 = r(api.sliceid.c50, api.nm_reference.c50);
    api.ratio_vs_bare_c50 = r(api.sliceid.c50, api.bare_http.c50);
    api.ratio_vs_nm_c1 = r(api.sliceid.c1, api.nm_reference.c1);
    api.ratio_vs_bare_c1 = r(api.sliceid.c1, api.bare_http.c1);
    api.ratio_vs_nm_keepalive_c50 = r(api.sliceid.c50, api.nm_reference_keepalive.c50);
    api.ratio_close_vs_nm_c50 = r(api.sliceid_close.c50, api.nm_reference.c50);
    const cr = (a: LoadFigures | null, b: LoadFigures | null): number | null => (a?.cpu_us_per_req && b?.cpu_us_per_req ? round(b.cpu_us_per_req / a.cpu_us_per_req, 3) : null);
    api.cpu_ratio_vs_nm_c50 = cr(api.sliceid.c50, api.nm_reference.c50);
    api.cpu_ratio_vs_bare_c50 = cr(api.sliceid.c50, api.bare_http.c50);
  } finally {
    for (const c of refs) await stopChild(c, 2000);
    removeTempDir(work);
  }
}

async function sectionIdle(d: Daemon): Promise<void> {
  note(`idle: settle ${CFG.idleSettleS} s, then measure ${CFG.idleS} s`);
  await sleep(CFG.idleSettleS * 1000);
  const a = procSample(d.child.pid);
  const t0 = performance.now();
  await sleep(CFG.idleS * 1000);
  const b = procSample(d.child.pid);
  const s = (performance.now() - t0) / 1000;
  if (d.child.exitCode !== undefined) throw new Error('sliceid exited during the idle measurement');
  const scale = 60 / s;
  const task = b.taskCpuS - a.taskCpuS;
  const proc = b.procCpuS - a.procCpuS;
  // A thread that ended in the window drops out of the task sum; the process line keeps it.
  results.idle.cpu_s_per_60s = round(Math.max(task, proc) * scale, 3);
  results.idle.ctx_switches_per_60s = round((b.ctxSwitches - a.ctxSwitches) * scale, 0);
  results.idle.measured_s = round(s, 2);
  results.idle.task_stat_cpu_s = round(task, 3);
  results.idle.process_stat_cpu_s = round(proc, 3);
  results.idle.schedstat_cpu_s = round(b.schedCpuS - a.schedCpuS, 4);
  results.idle.threads = b.threads;
}

async function sectionScale(d: Daemon): Promise<void> {
  const accounts = path.join(d.root, 'var', 'emulab', 'boot', 'tmcc', 'accounts');
  const staging = path.join(d.root, 'var', 'tmp');
  fs.mkdirSync(staging, { recursive: true });
  const tmp = path.join(staging, 'accounts.new');
  note(`scale: writing ${CFG.scaleUsers} users x ${CFG.scaleKeysPer} keys`);
  fs.writeFileSync(tmp, accountsFile(CFG.scaleUsers, CFG.scaleKeysPer));
  const from = d.child.lines.length;
  const t0 = performance.now();
  fs.renameSync(tmp, accounts); // atomic, and from outside the watched folder
  const { line, at } = await waitForLine(
    d.child,
    (l) => l.msg === 'refresh' && (Number(l['users']) >= CFG.scaleUsers || Number(l['keys']) >= CFG.scaleUsers * CFG.scaleKeysPer),
    CFG.refreshTimeoutMs,
    from,
  );
  results.scale_10k.refresh_s = round((at - t0) / 1000, 3);
  results.scale_10k.refresh_logged_ms = typeof line['durationMs'] === 'number' ? line['durationMs'] : null;
  results.scale_10k.users = Number(line['users']) || null;
  results.scale_10k.keys = Number(line['keys']) || null;
  note(`  refresh seen after ${results.scale_10k.refresh_s} s (logged durationMs ${results.scale_10k.refresh_logged_ms})`);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const work = tempDir('sliceid-bench-scale-');
  let nm: Child | undefined;
  try {
    const first = await rpc(d.port, GETSSHKEYS_CALL, agent);
    const data = parseKeysResponse(first.body.toString('utf8'));
    const nkeys = Object.values(data).reduce((n, v) => n + (v ? v.split('\n').length : 0), 0);
    if (nkeys < CFG.scaleUsers * CFG.scaleKeysPer) throw new Error(`GetSSHKeys after the 10k refresh carries ${nkeys} keys, expected >= ${CFG.scaleUsers * CFG.scaleKeysPer}`);
    results.scale_10k.response_bytes = first.body.length;
    // The refresh is complete once sshd's key files are written too (they follow the API's
    // answers, src/daemon/refresh.ts): the calls and the resident set are measured after that.
    const files = await waitForLine(d.child, (l) => l.msg === 'sshd key files updated' && Number(l['written']) >= CFG.scaleUsers, CFG.refreshTimeoutMs, from);
    results.scale_10k.sshd_files_s = round((files.at - t0) / 1000, 3);
    note(`  sshd key files written after ${results.scale_10k.sshd_files_s} s`);
    const times: number[] = [];
    for (let i = 0; i < CFG.scaleCalls; i++) times.push((await rpc(d.port, GETSSHKEYS_CALL, agent)).ms);
    results.scale_10k.getsshkeys_ms = round(median(times), 2);
    results.scale_10k.getsshkeys_p90_ms = round(quantile(times, 0.9), 2);
    results.scale_10k.rss_mb = rssMb(d.child.pid);
    results.scale_10k.rss_detail = rssDetail(d.child.pid);

    // The same call against the NodeManager-style reference holding the same 10k data.
    const bodyFile = path.join(work, 'getsshkeys-10k.xml');
    fs.writeFileSync(bodyFile, first.body);
    nm = startChild('nm-reference(10k)', 'python3', [NM_REFERENCE, '--data', bodyFile, '--port', '0', '--keep-alive']);
    const nmPort = Number((await waitForLine(nm, (l) => l.msg === 'ready', 60_000)).line['port']);
    const nmAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await rpc(nmPort, GETSSHKEYS_CALL, nmAgent);
    const nmTimes: number[] = [];
    for (let i = 0; i < CFG.scaleCalls; i++) nmTimes.push((await rpc(nmPort, GETSSHKEYS_CALL, nmAgent)).ms);
    nmAgent.destroy();
    results.scale_10k.nm_reference_getsshkeys_ms = round(median(nmTimes), 2);
  } finally {
    agent.destroy();
    if (nm) await stopChild(nm, 2000);
    removeTempDir(work);
  }
}

async function sectionCold(): Promise<void> {
  const root = prepareTree();
  const state = path.join(root, 'var', 'lib', 'sliceid');
  const s = results.cold_start.samples;
  const stops: number[] = [];
  try {
    for (let i = 0; i < CFG.coldRuns; i++) {
      // node -e 0: exec to exit, spawned the same way.
      const t0 = performance.now();
      const n = startChild('node -e 0', RUNTIME, ['-e', '0']);
      await Promise.race([n.exited, sleep(30_000)]);
      if (n.exitCode === undefined) await stopChild(n, 100);
      s.node.push(round(performance.now() - t0, 2)!);

      for (const fresh of [true, false]) {
        if (fresh) fs.rmSync(state, { recursive: true, force: true });
        for (const f of GID_FILES) fs.rmSync(path.join(root, f), { force: true });
        const d = await startSliceid(root, fresh ? 'fresh' : 'warm');
        (fresh ? s.fresh : s.warm).push(round(d.startMs, 2)!);
        stops.push(await stopChild(d.child, 5000));
      }
      note(`cold start run ${i + 1}/${CFG.coldRuns}: node ${s.node.at(-1)} ms, fresh ${s.fresh.at(-1)} ms, warm ${s.warm.at(-1)} ms`);
    }
  } finally {
    removeTempDir(root);
  }
  const c = results.cold_start;
  c.node_baseline_ms = round(median(s.node), 1);
  c.fresh_ms = round(median(s.fresh), 1);
  c.warm_ms = round(median(s.warm), 1);
  c.stop_ms = round(median(stops), 1);
  c.warm_ratio = c.warm_ms && c.node_baseline_ms ? round(c.warm_ms / c.node_baseline_ms, 2) : null;
  c.fresh_ratio = c.fresh_ms && c.node_baseline_ms ? round(c.fresh_ms / c.node_baseline_ms, 2) : null;
}

// ---------------------------------------------------------------------------------------------
// Report

function computeRatios(): void {
  const r = results.rss_mb;
  if (r.start !== null && r.bare_http_start !== null) r.start_minus_bare_start = round(r.start - r.bare_http_start, 1);
  if (r.after_load !== null && r.bare_http_after_load) r.after_load_vs_bare = round(r.after_load / r.bare_http_after_load, 3);
  const s = results.scale_10k;
  if (s.rss_mb !== null && r.start) s.rss_vs_start = round(s.rss_mb / r.start, 3);
}

function computeGoals(): void {
  const g = (goal: string, key: string, op: '>=' | '<=', target: number, value: number | null | undefined): void => {
    const v = value ?? null;
    results.goals.push({ goal, key, op, target, value: v, met: v === null ? null : op === '>=' ? v >= target : v <= target });
  };
  g('GetSSHKeys c50 throughput vs NodeManager-style reference', 'api.ratio_vs_nm_c50', '>=', 10, results.api.ratio_vs_nm_c50);
  g('GetSSHKeys c50 throughput vs bare node:http', 'api.ratio_vs_bare_c50', '>=', 0.5, results.api.ratio_vs_bare_c50);
  g('GetSSHKeys p99 at 50 connections (ms)', 'api.sliceid.c50.p99_ms', '<=', 10, results.api.sliceid.c50?.p99_ms);
  g('warm start vs node -e 0', 'cold_start.warm_ratio', '<=', 2.5, results.cold_start.warm_ratio);
  g('RSS after load (MB)', 'rss_mb.after_load', '<=', 80, results.rss_mb.after_load);
  g('RSS at start minus bare node:http at start (MB)', 'rss_mb.start_minus_bare_start', '<=', 10, results.rss_mb.start_minus_bare_start);
  g('RSS after load vs bare node:http after the same load', 'rss_mb.after_load_vs_bare', '<=', 1.1, results.rss_mb.after_load_vs_bare);
  g('RSS after the 10k refresh and calls vs own RSS at start', 'scale_10k.rss_vs_start', '<=', 1.5, results.scale_10k.rss_vs_start);
  g('idle CPU (s per 60 s)', 'idle.cpu_s_per_60s', '<=', 0.05, results.idle.cpu_s_per_60s);
  g('10k-user refresh (s)', 'scale_10k.refresh_s', '<=', 2, results.scale_10k.refresh_s);
  for (const s of SSHD_GOALS) g(s.goal, `sshd.${s.key}`, '<=', s.target, results.sshd?.[s.key] as number | null | undefined);
  for (const h of HOST_GOALS) g(h.goal, `host.${h.key}`, h.op, h.target, hostGoalValue(results.host, h.key));
}

function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined) return 'n/a';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

function report(): string {
  const L: string[] = [];
  const m = results.machine;
  L.push('', `sliceid bench${QUICK ? ' (--quick)' : ''}: ${String(m['cpu_model'])}, ${String(m['cores'])} cores, node ${String(m['node_version'])}, ${String(m['python'])}, ${String(m['date'])}`, '');
  L.push(`GetSSHKeys over 127.0.0.1 (autocannon, ${CFG.loadS} s each, response ${results.api.response_bytes ?? 'n/a'} bytes, same data: ${String(results.api.same_data)})`);
  L.push('  server                  conns     req/s   p50 ms   p99 ms  CPU us/req   errors');
  for (const name of ['sliceid', 'nm_reference', 'bare_http', 'nm_reference_keepalive', 'sliceid_close'] as const) {
    for (const c of ['c1', 'c50'] as const) {
      const f = results.api[name][c];
      L.push(`  ${name.padEnd(22)} ${c.slice(1).padStart(5)} ${fmt(f?.rps).padStart(9)} ${fmt(f?.p50_ms, 3).padStart(8)} ${fmt(f?.p99_ms, 3).padStart(8)} ${fmt(f?.cpu_us_per_req, 1).padStart(11)} ${String(f ? f.errors + f.non2xx + f.timeouts : 'n/a').padStart(8)}`);
    }
  }
  L.push(`  sliceid / nm_reference: c1 ${fmt(results.api.ratio_vs_nm_c1)}x, c50 ${fmt(results.api.ratio_vs_nm_c50)}x;  sliceid / bare_http: c1 ${fmt(results.api.ratio_vs_bare_c1)}, c50 ${fmt(results.api.ratio_vs_bare_c50)}`);
  L.push(`  server CPU per call at c50: nm_reference / sliceid ${fmt(results.api.cpu_ratio_vs_nm_c50)}x, bare_http / sliceid ${fmt(results.api.cpu_ratio_vs_bare_c50)}`);
  L.push(`  c50: sliceid / nm_reference_keepalive ${fmt(results.api.ratio_vs_nm_keepalive_c50)}x; sliceid_close / nm_reference (both a connection per call) ${fmt(results.api.ratio_close_vs_nm_c50)}x`);
  L.push('  (nm_reference: HTTP/1.0, a new connection per call, as NodeManager serves; _keepalive: HTTP/1.1; sliceid_close: client sends Connection: close)', '');
  const c = results.cold_start;
  L.push(`Start-up, exec to three files written + port accepting (median of ${c.runs})`);
  L.push(`  fresh ${fmt(c.fresh_ms, 1)} ms, warm ${fmt(c.warm_ms, 1)} ms, node -e 0 ${fmt(c.node_baseline_ms, 1)} ms; warm/node ${fmt(c.warm_ratio)}x, fresh/node ${fmt(c.fresh_ratio)}x; SIGTERM to exit ${fmt(c.stop_ms, 1)} ms`, '');
  const r = results.rss_mb;
  L.push(`RSS (MB): sliceid at start ${fmt(r.start, 1)}, after load ${fmt(r.after_load, 1)}; nm_reference ${fmt(r.nm_reference_after_load, 1)} (keep-alive ${fmt(r.nm_reference_keepalive_after_load, 1)}), bare_http ${fmt(r.bare_http_after_load, 1)} (at start ${fmt(r.bare_http_start, 1)})`);
  L.push(`  start - bare start ${fmt(r.start_minus_bare_start, 1)} MB; after load / bare after load ${fmt(r.after_load_vs_bare, 3)}`);
  for (const [k, v] of [['start', r.start_detail], ['after load', r.after_load_detail], ['after 10k', results.scale_10k.rss_detail]] as const) {
    if (v) L.push(`  ${k}: ${Object.entries(v).map(([n, mb]) => `${n} ${fmt(mb, 1)}`).join(', ')}`);
  }
  L.push('');
  const i = results.idle;
  L.push(`Idle over ${fmt(i.measured_s, 1)} s, scaled to 60 s: CPU ${fmt(i.cpu_s_per_60s, 3)} s, ${fmt(i.ctx_switches_per_60s, 0)} context switches (${String(i.threads ?? 'n/a')} threads; schedstat ${fmt(i.schedstat_cpu_s, 4)} s)`, '');
  const s = results.scale_10k;
  L.push(`Scale: ${CFG.scaleUsers} users x ${CFG.scaleKeysPer} ssh-rsa keys (${String(s.users ?? 'n/a')} users, ${String(s.keys ?? 'n/a')} keys, ${String(s.response_bytes ?? 'n/a')} bytes)`);
  L.push(`  refresh ${fmt(s.refresh_s, 3)} s rename-to-log (logged durationMs ${fmt(s.refresh_logged_ms, 1)}; sshd key files written ${fmt(s.sshd_files_s, 3)} s), GetSSHKeys median ${fmt(s.getsshkeys_ms)} ms (p90 ${fmt(s.getsshkeys_p90_ms)}; nm_reference ${fmt(s.nm_reference_getsshkeys_ms)} ms), RSS ${fmt(s.rss_mb, 1)} MB (${fmt(s.rss_vs_start, 3)}x at start)`, '');
  L.push(...reportSshd(results.sshd));
  L.push(...reportHost(results.host));
  L.push('Goals (issues 6, 12, 15 and 23)');
  for (const g of results.goals) {
    const verdict = g.met === null ? 'not measured' : g.met ? 'met' : 'MISSED';
    L.push(`  ${g.goal.padEnd(58)} ${g.op} ${String(g.target).padEnd(5)} measured ${fmt(g.value, 3).padStart(8)}  ${verdict}`);
  }
  for (const [k, v] of Object.entries(results.errors)) L.push(`ERROR in ${k}: ${v}`);
  L.push('', `wrote ${OUT} (${fmt(results.elapsed_s, 1)} s)`);
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function section(name: string, fn: () => Promise<void>): Promise<void> {
  if (!SECTIONS.has(name)) return;
  try {
    await fn();
  } catch (err) {
    results.errors[name] = err instanceof Error ? err.message : String(err);
    note(`ERROR in ${name}: ${results.errors[name]}`);
  }
}

async function main(): Promise<number> {
  note(`cli ${CLI}${BUNDLED ? ' (dist/bundle)' : ''} on node ${RUNTIME_VERSION} (${RUNTIME}), fixture ${FIXTURE}${QUICK ? ', --quick' : ''}`);
  // Start-up first, on its own tree; then one long-running daemon for load, idle and scale.
  await section('cold', sectionCold);
  await section('sshd', async () => void (results.sshd = await benchSshd({ quick: QUICK, note, runtime: RUNTIME })));
  // The shared host (issue 23): its own daemons and guests, before the long-running node daemon.
  await section('host', async () => {
    results.host = await benchHost({ quick: QUICK, note, runtime: RUNTIME, cli: CLI, env: DEPLOYED_ENV, loadS: CFG.loadS, loadRounds: CFG.loadRounds, warmupS: CFG.warmupS, idleS: CFG.idleS, idleSettleS: CFG.idleSettleS, ...(argv.guests ? { counts: argv.guests.split(',').map(Number) } : {}) });
  });
  if (['api', 'idle', 'scale'].some((s) => SECTIONS.has(s))) {
    let d: Daemon | undefined;
    try {
      const root = prepareTree();
      note('starting sliceid (fresh), then again warm for the measured instance');
      const first = await startSliceid(root, 'init');
      await stopChild(first.child, 5000);
      d = await startSliceid(root, 'main');
      await sleep(500);
      results.rss_mb.start = rssMb(d.child.pid);
      results.rss_mb.start_detail = rssDetail(d.child.pid);
      const daemon = d;
      await section('api', () => sectionApi(daemon));
      await section('idle', () => sectionIdle(daemon));
      await section('scale', () => sectionScale(daemon));
    } catch (err) {
      results.errors['daemon'] = err instanceof Error ? err.message : String(err);
      note(`ERROR: ${results.errors['daemon']}`);
    } finally {
      if (d) {
        const ms = await stopChild(d.child, 5000);
        if (ms > 2000) note(`sliceid took ${ms.toFixed(0)} ms to stop after SIGTERM`);
        removeTempDir(d.root);
      }
    }
  }
  computeRatios();
  computeGoals();
  results.elapsed_s = round((performance.now() - benchStart) / 1000, 1) ?? 0;
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${report()}\n`);
  return Object.keys(results.errors).length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
