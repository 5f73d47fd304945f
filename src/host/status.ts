// `sliceid status --host [--guest NAME] [--json]`: the guests a host daemon serves, from the state
// file it publishes (/var/run/sliceid.guests), each checked from inside: a GetSSHKeys call made in
// the guest's network namespace (the host's own node, nsenter --net; nothing of the guest is run).
import fs from 'node:fs';
import { operatorText } from '../operator-text.js';
import { spawn } from 'node:child_process';
import type { NodePaths } from '../paths.js';
import { guestsStateFile, type HostState } from './daemon.js';
import type { GuestStatus } from './guest.js';
import { loadHostConfig } from './config.js';
import { guestPaths } from './hooks.js';
import { describeRun, hookProblems, hookReport, pendingHooks } from '../hooks/report.js';
import { hooksRunner } from '../hooks/lock.js';
import { openExistingCache, cachedIdentity } from '../commands/cache-read.js';

/** A guest's slice hooks (src/host/hooks.ts): each hook's last run for its slice, pending, problems. */
export function guestHooks(paths: NodePaths, name: string): { runs: string[]; pending: string[]; problems: string[] } {
  let dir = paths.hooksDir;
  try {
    dir = loadHostConfig(paths).node.hooks.dir ?? dir;
  } catch {
    // An unreadable config: the default directory (the daemon does not start with such a config).
  }
  const gp = guestPaths(paths, name);
  const report = hookReport(dir, gp.hookRecords, hooksRunner(gp.stateDir));
  let urn: string | undefined;
  const cache = openExistingCache(gp);
  try {
    urn = cache ? cachedIdentity(cache).identity?.identity.slice.urn : undefined;
  } finally {
    cache?.close();
  }
  const slice = urn ? report.records.slices[urn] : undefined;
  const runs = Object.entries(slice?.hooks ?? {}).map(([hook, run]) => `${hook} ${describeRun(run)} at ${new Date(run.at).toISOString()}`);
  return { runs, pending: urn ? pendingHooks(report, urn) : [], problems: hookProblems(report, urn) };
}

const PROBE = `
const net = require('net');
const body = "<?xml version='1.0'?><methodCall><methodName>GetSSHKeys</methodName><params></params></methodCall>";
const c = net.connect({ host: '127.0.0.1', port: Number(process.env.PORT) });
let out = '';
c.setTimeout(3000, () => { process.stdout.write('timeout'); process.exit(1); });
c.on('connect', () => c.write('POST / HTTP/1.0\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n' + body));
c.on('data', (d) => { if (out.length < 1e6) out += d; });
c.on('end', () => { process.stdout.write(/^HTTP\\/1\\.. 200/.test(out) ? 'ok' : 'bad answer'); process.exit(0); });
c.on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(1); });
`;

/** Whether the guest's API answers from inside its network namespace. */
export function probeFromInside(pid: number | undefined, netns: string | undefined, port: number): Promise<string> {
  const ns = netns ?? (pid ? `/proc/${pid}/ns/net` : undefined);
  if (!ns) return Promise.resolve('no network namespace');
  return new Promise((resolve) => {
    const c = spawn('nsenter', [`--net=${ns}`, '--', process.execPath, '-e', PROBE], { stdio: ['ignore', 'pipe', 'ignore'], env: { PORT: String(port) }, timeout: 5000 });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', (e) => resolve(e.message));
    c.on('close', () => resolve(out || 'no answer'));
  });
}

export interface GuestReport extends GuestStatus {
  reachable: string;
  hooks: { runs: string[]; pending: string[]; problems: string[] };
}

export function readHostState(paths: NodePaths): HostState | undefined {
  try {
    return JSON.parse(fs.readFileSync(guestsStateFile(paths), 'utf8')) as HostState;
  } catch {
    return undefined;
  }
}

export async function hostStatus(paths: NodePaths, opts: { guest?: string; json: boolean; port?: number }): Promise<{ text: string; code: number }> {
  const state = readHostState(paths);
  if (!state) return { text: `no host daemon state at ${guestsStateFile(paths)} (is "sliceid run --host" running?)\n`, code: 3 };
  let guests = state.guests;
  if (opts.guest !== undefined) {
    guests = guests.filter((g) => g.name === opts.guest);
    if (!guests.length) return { text: `no guest named ${opts.guest}\n`, code: 1 };
  }
  const reports: GuestReport[] = await Promise.all(
    guests.map(async (g) => {
      const spec = g as GuestStatus & { pid?: number; netns?: string };
      const reachable = g.present && g.endpoints.some((e) => !e.startsWith('/')) ? await probeFromInside(spec.pid, spec.netns, opts.port ?? 812) : 'not served';
      return { ...g, reachable, hooks: guestHooks(paths, g.name) };
    }),
  );
  if (opts.json) return { text: `${JSON.stringify(opts.guest !== undefined ? reports[0] : { pid: state.pid, at: state.at, config: state.config, configError: state.configError, guests: reports }, null, 2)}\n`, code: 0 };
  const lines: string[] = [];
  if (opts.guest === undefined) {
    lines.push(`host daemon pid ${state.pid}, ${reports.length} guest(s), config ${state.config ?? '(none: defaults)'}`);
    if (state.configError) lines.push(`  config problem: ${state.configError}`);
  }
  for (const r of reports) {
    lines.push(`guest ${r.name} (${r.from}${r.present ? '' : ', gone: listeners closed, data kept'})`);
    lines.push(`  slice:        ${r.slice ?? '(none)'}`);
    lines.push(`  files:        ${r.files.join(' ') || '(none)'}`);
    lines.push(`  endpoints:    ${r.endpoints.join(' ') || '(none)'}`);
    lines.push(`  from inside:  ${r.reachable}`);
    lines.push(`  last refresh: ${r.lastRefresh ?? '(never)'}`);
    lines.push(`  hooks:        ${r.hooks.runs.length ? `${r.hooks.runs.length} run for this slice` : 'none run for this slice'}${r.hooks.pending.length ? `, pending: ${r.hooks.pending.join(', ')}` : ''}`);
    for (const h of r.hooks.runs) lines.push(`    - ${operatorText(h)}`);
    for (const h of r.hooks.problems) lines.push(`    ! ${operatorText(h)}`);
    lines.push(`  problems:     ${r.problems.length ? '' : 'none'}`);
    for (const p of r.problems) lines.push(`    - ${p}`);
  }
  return { text: `${lines.join('\n')}\n`, code: 0 };
}
