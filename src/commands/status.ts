// sliceid status: identity and the origin of each fact, users and keys, sources (stale ones with
// their reason), the last refresh, the state of the three files, and whether the API answers.
import fs from 'node:fs';
import { operatorText } from '../operator-text.js';
import { request as httpRequest } from '../builtins.js';
import { command, runningDaemon } from './common.js';
import { nodePaths, type NodePaths } from '../paths.js';
import { formatWhere } from '../errors.js';
import { encodeMethodCall } from '../xmlrpc/encode.js';
import { openExistingCache, cachedIdentity } from './cache-read.js';
import { META_API, readRefusals } from '../daemon/refresh.js';
import { DAY_MS, parseGidChain, verifyGidChain } from '../identity/gid.js';
import type { SourceState, RefreshRecord } from '../store/types.js';
import type { IdentityResult } from '../identity/index.js';
import { setAsideNotice } from '../identity/node-record.js';
import { nodeHookProblems } from '../hooks/report.js';
import { loadConfig } from '../config.js';
import { DEFAULT_KEY_TYPE_SETTING, listKeys, listingReport, type KeyTypeSetting } from '../api/key-listing.js';
import { sshdState, type SshdState } from '../sshd/effective.js';
import { isoTime } from '../time.js';

const USAGE = 'usage: sliceid status [--root DIR] [--config FILE] [--json] [--pid] [--host] [--guest NAME]\n';

interface FileState {
  readonly path: string;
  readonly ok: boolean;
  readonly detail: string;
}

interface ApiState {
  readonly address: string | undefined;
  readonly answers: boolean;
  readonly detail: string;
}

export interface StatusReport {
  readonly root: string;
  readonly daemon: { readonly running: boolean; readonly pid: number | undefined };
  /** The config status read: the running daemon's (as it published it), else the file on disk. */
  readonly config?: ConfigReport;
  readonly identity: IdentityResult['identity'] | undefined;
  readonly facts: Record<string, { value: string; from: string }>;
  readonly identityError: string | undefined;
  readonly files: readonly FileState[];
  readonly users: ReadonlyArray<{ login: string; uid: number | undefined; keys: number }>;
  readonly keys: number;
  readonly sources: readonly SourceState[];
  readonly lastRefresh: RefreshRecord | undefined;
  readonly api: ApiState;
  /** Which keys GetSSHKeys lists and which types it leaves out ([api] getsshkeys_key_types). */
  readonly getSshKeys?: { readonly line: string; readonly listed: number; readonly leftOut: Readonly<Record<string, number>> };
  /** Whether sshd's effective configuration takes the keys from sliceid's files or command. */
  readonly sshd: SshdState;
  readonly problems: readonly string[];
  /** State made for another node that the last start set aside (until the next clean refresh). */
  readonly stateNotice?: string | undefined;
}

function fileStates(paths: NodePaths, identity: IdentityResult['identity'] | undefined): FileState[] {
  const mode = (file: string): string => (fs.statSync(file).mode & 0o777).toString(8).padStart(4, '0');
  const out: FileState[] = [];
  try {
    const name = fs.readFileSync(paths.slicename, 'utf8');
    const ok = !identity || name === identity.slicename;
    out.push({ path: paths.slicename, ok, detail: `${JSON.stringify(name)} mode ${mode(paths.slicename)}${ok ? '' : ` (expected ${identity?.slicename})`}` });
  } catch (err) {
    out.push({ path: paths.slicename, ok: false, detail: (err as Error).message });
  }
  for (const [file, urn] of [[paths.sliceGid, identity?.slice.urn], [paths.nodeGid, identity?.node.urn]] as const) {
    try {
      const chain = parseGidChain(fs.readFileSync(file, 'utf8'));
      const leaf = chain[0];
      const verified = verifyGidChain(chain);
      const problems = [
        ...(verified.ok ? [] : [`chain does not verify: ${verified.problems.join('; ')}`]),
        ...(urn && leaf?.urn !== urn ? [`URN ${leaf?.urn} is not ${urn}`] : []),
      ];
      const days = leaf ? Math.floor((leaf.notAfter.getTime() - Date.now()) / DAY_MS) : 0;
      out.push({
        path: file,
        ok: problems.length === 0,
        detail: problems.length ? problems.join('; ') : `${leaf?.hrn} serial ${leaf?.serial}, expires in ${days} days, chain of ${chain.length} verifies, mode ${mode(file)}`,
      });
    } catch (err) {
      out.push({ path: file, ok: false, detail: (err as Error).message });
    }
  }
  return out;
}

const GET_SSH_KEYS = encodeMethodCall('GetSSHKeys', []);

/**
 * The socket is the daemon's only when it is a socket of the uid that wrote the pidfile (root on a
 * node): anything else at the path was put there by someone else and is not asked anything.
 */
export function socketNotOurs(socket: string, pidFile: string): string | undefined {
  try {
    const st = fs.lstatSync(socket);
    const owner = fs.statSync(pidFile).uid;
    if (!st.isSocket()) return `${socket} is not a socket (someone else's file is at the path)`;
    if (st.uid !== owner) return `${socket} is owned by uid ${st.uid}, not by the daemon's uid ${owner}: not sliceid's, not asked`;
    return undefined;
  } catch (err) {
    return `${socket}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be checked'}`;
  }
}

function probeApi(addresses: Array<{ host?: string; port?: number; socket?: string }>, pidFile?: string): Promise<ApiState> {
  const target = addresses.find((a) => a.socket) ?? addresses.find((a) => a.port !== undefined);
  if (!target) return Promise.resolve({ address: undefined, answers: false, detail: 'no API address recorded' });
  const address = target.socket ?? `${target.host}:${target.port}`;
  const notOurs = target.socket && pidFile ? socketNotOurs(target.socket, pidFile) : undefined;
  if (notOurs) return Promise.resolve({ address, answers: false, detail: notOurs });
  return new Promise((resolve) => {
    const req = httpRequest(
      { ...(target.socket ? { socketPath: target.socket } : { host: target.host, port: target.port }), method: 'POST', path: '/', headers: { 'content-type': 'text/xml' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const ok = res.statusCode === 200 && body.includes('<methodResponse>') && !body.includes('<fault>');
          resolve({ address, answers: ok, detail: ok ? `GetSSHKeys answered (${body.length} bytes)` : `HTTP ${res.statusCode}: ${body.slice(0, 120)}` });
        });
      },
    );
    req.setTimeout(2000, () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', (err) => resolve({ address, answers: false, detail: err.message }));
    req.end(GET_SSH_KEYS);
  });
}

export interface ConfigReport {
  /** The config file (none: the defaults). */
  readonly file: string | undefined;
  /** Whose: the running daemon's (published beside its pidfile), or read from disk by status. */
  readonly from: 'daemon' | 'disk';
  readonly loadedAt?: string;
}

/** What the running daemon published about the config it runs with (lifecycle's writeFaults). */
export function publishedConfig(paths: NodePaths): { file: string | undefined; loadedAt: number; getsshkeysKeyTypes: KeyTypeSetting } | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(paths.faultsFile, 'utf8')) as { config?: { file?: unknown; loadedAt?: unknown; getsshkeysKeyTypes?: unknown } };
    const c = parsed.config;
    if (!c || typeof c.loadedAt !== 'number' || c.getsshkeysKeyTypes === undefined) return undefined;
    return { file: typeof c.file === 'string' ? c.file : undefined, loadedAt: c.loadedAt, getsshkeysKeyTypes: c.getsshkeysKeyTypes as KeyTypeSetting };
  } catch {
    return undefined;
  }
}

export async function collectStatus(paths: NodePaths, keyTypes: KeyTypeSetting = DEFAULT_KEY_TYPE_SETTING): Promise<StatusReport> {
  const daemon = runningDaemon(paths);
  const pid = 'pid' in daemon ? daemon.pid : undefined;
  const running = 'pid' in daemon || daemon.running;
  const cache = openExistingCache(paths);
  const problems: string[] = [];
  const sshd = await sshdState(paths);
  if (!cache) {
    return {
      root: paths.root, daemon: { running, pid }, identity: undefined, facts: {}, identityError: undefined,
      files: fileStates(paths, undefined), users: [], keys: 0, sources: [], lastRefresh: undefined,
      api: { address: undefined, answers: false, detail: 'no cache yet' }, sshd,
      problems: [`no cache at ${paths.database}: sliceid has not run on this node (start it with "sliceid run")`, ...(sshd.problem ? [sshd.problem] : [])],
      stateNotice: setAsideNotice(paths),
    };
  }
  try {
    const { identity, error } = cachedIdentity(cache);
    const facts: Record<string, { value: string; from: string }> = {};
    for (const [name, fact] of Object.entries(identity?.facts ?? {})) {
      if (fact) facts[name] = { value: fact.value, from: formatWhere(fact.where) };
    }
    const users = cache.users().map((u) => ({ login: u.login, uid: u.uid, keys: u.keys.length }));
    const sources = cache.sources();
    const files = fileStates(paths, identity?.identity);
    const apiRaw = cache.getMeta(META_API);
    const api = !running
      ? { address: undefined, answers: false, detail: 'daemon not running' }
      : await probeApi(apiRaw ? (JSON.parse(apiRaw) as Array<{ host?: string; port?: number; socket?: string }>) : [], paths.pidFile);
    if (!running) problems.push('daemon not running');
    else problems.push(...runningFaults(paths));
    problems.push(...identityProblem(error, problems));
    for (const f of files) if (!f.ok) problems.push(`${f.path}: ${f.detail}`);
    for (const s of sources) if (s.stale) problems.push(`source ${s.id} is stale: ${s.reason ?? s.lastStatus}`);
    if (sources.length === 0) problems.push('no key source found (no tmcc accounts, authorized_keys or geni-get): GetSSHKeys has no key to list');
    problems.push(...keyDataProblems(sources, identity?.identity.slicename, cache.sliceKeys().length));
    // Users the login policy refused (not this node's accounts: src/keys/logins.ts), by name or URN.
    for (const refused of Object.values(readRefusals(cache))) problems.push(...refused);
    if (running && !api.answers) problems.push(`API does not answer at ${api.address}: ${api.detail}`);
    problems.push(...nodeHookProblems(paths, identity?.identity.slice.urn));
    const listing = listKeys(cache.sliceKeys(), keyTypes);
    const listed = listingReport(identity?.identity.slicename, listing, keyTypes);
    problems.push(...listed.problems);
    if (sshd.problem) problems.push(sshd.problem);
    return {
      root: paths.root, daemon: { running, pid }, identity: identity?.identity, facts, identityError: error,
      files, users, keys: cache.sliceKeys().length, sources, lastRefresh: cache.lastRefresh(), api, sshd,
      getSshKeys: { line: listed.line, listed: listing.listed.length, leftOut: listing.leftOut }, problems,
      stateNotice: setAsideNotice(paths),
    };
  } finally {
    cache.close();
  }
}

/**
 * A refused identity is a problem whether the daemon runs or not; a running daemon's faults file
 * usually names it already (then it is not repeated).
 */
function identityProblem(error: string | undefined, already: readonly string[]): string[] {
  return error && !already.some((p) => p.includes(error)) ? [`identity: ${error}`] : [];
}

/**
 * What is wrong with the key data even when no source is stale: a source that could not be read
 * (invalid) or was read only in part with nothing better cached, and a slice whose GetSSHKeys entry
 * is empty (the Raven tools then stop with "no keys").
 */
function keyDataProblems(sources: readonly SourceState[], slicename: string | undefined, keys: number): string[] {
  const out: string[] = [];
  for (const s of sources) {
    if (s.stale || (s.lastStatus !== 'invalid' && s.lastStatus !== 'partial')) continue;
    // The cache's own words only (its reason goes on with skipped lines, which may quote a file).
    const why = s.reason?.split('; ')[0] ?? s.lastStatus;
    out.push(`source ${s.id} (${s.origin}) is not usable as it is: ${why}`);
  }
  if (slicename !== undefined && keys === 0) {
    out.push(`slice ${slicename} has no key: its GetSSHKeys entry is empty, so the Raven tools find no keys`);
  }
  return out;
}

/** Faults the running daemon published after its last refresh (I/O errors, deferred updates). */
function runningFaults(paths: NodePaths): string[] {
  try {
    const parsed = JSON.parse(fs.readFileSync(paths.faultsFile, 'utf8')) as { faults?: unknown; log?: { dropped?: unknown; lastError?: unknown; lastErrorAt?: unknown } };
    const out = Array.isArray(parsed.faults) ? parsed.faults.map((f) => `last refresh: ${String(f)}`) : [];
    // Log lines the daemon's destination refused (full disk, closed pipe): dropped, the service went on.
    const log = parsed.log;
    if (log && typeof log.dropped === 'number' && log.dropped > 0) {
      const when = typeof log.lastErrorAt === 'number' ? ` at ${isoTime(log.lastErrorAt)}` : '';
      out.push(`log: ${log.dropped} line(s) dropped, the log destination failed (${String(log.lastError).replace(/[^\w .:-]/g, '?')}${when}); the daemon goes on`);
    }
    return out;
  } catch {
    return [];
  }
}

function ago(ms: number | undefined): string {
  if (ms === undefined) return 'never';
  const s = Math.round((Date.now() - ms) / 1000);
  return `${isoTime(ms)} (${s < 120 ? `${s} s` : `${Math.round(s / 60)} min`} ago)`;
}

export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  // Every row may quote what a user chose (a file name in a trigger, a source's reason): escaped.
  const row = (label: string, text: string): void => void lines.push(`${label.padEnd(12)}${operatorText(text)}`);
  row('daemon', r.daemon.running ? `running, pid ${r.daemon.pid ?? 'unknown'}` : 'not running');
  if (r.config) {
    const file = r.config.file ?? 'none (the defaults)';
    row('config', r.config.from === 'daemon' ? `${file}, as the running daemon loaded it at ${r.config.loadedAt}` : `${file} (read by status: the daemon is not running)`);
  }
  row('api', r.api.answers ? `answers on ${r.api.address}` : `not answering (${r.api.detail})`);
  if (r.identity) {
    row('slice', `${r.identity.slicename}  ${r.identity.slice.urn}  (${r.identity.slice.hrn})`);
    row('node', `${r.identity.node.urn}  (${r.identity.node.hrn})${r.identity.node.uuid ? `  uuid ${r.identity.node.uuid}` : ''}`);
  }
  const facts = Object.entries(r.facts);
  facts.forEach(([name, f], i) => row(i === 0 ? 'facts' : '', `${name} = ${f.value}  (${f.from})`));
  r.files.forEach((f, i) => row(i === 0 ? 'files' : '', `${f.ok ? 'ok   ' : 'BAD  '}${f.path}: ${f.detail}`));
  row('users', `${r.users.length} users, ${r.keys} keys served${r.users.length ? ': ' + r.users.map((u) => `${u.login} (${u.keys})`).join(', ') : ''}`);
  r.sources.forEach((s, i) =>
    row(i === 0 ? 'sources' : '', `${s.stale ? 'STALE ' : 'ok    '}${s.id}  ${s.origin}: ${s.users} users, ${s.keys} keys, last good ${ago(s.lastGood)}${s.reason ? `; ${s.reason}` : ''}`),
  );
  if (r.stateNotice) row('state', r.stateNotice);
  if (r.getSshKeys) row('getsshkeys', r.getSshKeys.line);
  row('sshd', `${r.sshd.uses}: ${r.sshd.detail}`);
  if (r.lastRefresh) row('refreshed', `${ago(r.lastRefresh.at)} by ${r.lastRefresh.trigger}, ${r.lastRefresh.durationMs} ms: ${r.lastRefresh.summary}`);
  r.problems.forEach((p, i) => row(i === 0 ? 'problems' : '', p));
  if (!r.problems.length) row('problems', 'none');
  return `${lines.join('\n')}\n`;
}

export const main = command(USAGE, { pid: { type: 'boolean', default: false }, host: { type: 'boolean', default: false }, guest: { type: 'string' } }, false, async ({ values }) => {
  const paths = nodePaths(values.root);
  // A shared host's daemon (sliceid run --host): its guests (src/host/status.ts).
  if (values.host || values.guest !== undefined) {
    const { hostStatus } = await import('../host/status.js');
    const out = await hostStatus(paths, { ...(values.guest !== undefined ? { guest: values.guest } : {}), json: values.json });
    (out.code === 0 ? process.stdout : process.stderr).write(out.text);
    return out.code;
  }
  // --pid: only "is the daemon running?" (the initscript's question): its pid, exit 0; else 3.
  if (values.pid) {
    const daemon = runningDaemon(paths);
    if ('pid' in daemon) {
      process.stdout.write(`${daemon.pid}\n`);
      return 0;
    }
    process.stderr.write(`sliceid: ${daemon.why}\n`);
    return daemon.running ? 1 : 3;
  }
  // GetSSHKeys' key types come from the config the running daemon runs with (it publishes it
  // beside its pidfile); without a daemon, from the file it would read. A config that does not
  // load is reported (the daemon would refuse it too) and the default is shown.
  let keyTypes: KeyTypeSetting = DEFAULT_KEY_TYPE_SETTING;
  let configProblem: string | undefined;
  let configReport: ConfigReport | undefined;
  const daemon = runningDaemon(paths);
  const published = 'pid' in daemon || daemon.running ? publishedConfig(paths) : undefined;
  if (published) {
    keyTypes = published.getsshkeysKeyTypes;
    configReport = { file: published.file, from: 'daemon', loadedAt: isoTime(published.loadedAt) };
  } else {
    try {
      const loaded = loadConfig(paths, values.config);
      keyTypes = loaded.config.api.getsshkeysKeyTypes;
      configReport = { file: loaded.file, from: 'disk' };
    } catch (err) {
      configProblem = `config: ${(err as Error).message}`;
    }
  }
  const collected = await collectStatus(paths, keyTypes);
  const withConfig = configReport ? { ...collected, config: configReport } : collected;
  const report = configProblem ? { ...withConfig, problems: [...withConfig.problems, configProblem] } : withConfig;
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
  return !report.daemon.running ? 3 : report.problems.length ? 1 : 0;
});
