// sliceid hooks: list the slice hooks (refused ones with the reason) and, per slice, each hook's
// last run (a run still going names its runner; one whose runner died shows as vanished).
// `sliceid hooks run`: ask the running daemon (SIGUSR2) to start the runner for the hooks that have
// not run well for the current slice; `--again` first forgets the runs that vanished, so that they
// run again (the operator has checked what they left). With no daemon it refuses: hooks are
// promised a live API. `sliceid hooks exec`: the runner itself (the sliceid-hooks unit's command).
import fs from 'node:fs';
import { hookReport, describeRun, pendingHooks, type HookReport } from '../hooks/report.js';
import { openExistingCache, cachedIdentity } from './cache-read.js';
import { command, runningDaemon, setup, UsageError } from './common.js';
import { isoTime } from '../time.js';
import { operatorText } from '../operator-text.js';
import { createLogger } from '../log.js';
import { execHooks } from '../hooks/exec.js';
import { acquireHooksLock, hooksRunner } from '../hooks/lock.js';
import { forgetVanished, markVanished } from '../hooks/records.js';
import { logFormatOption } from './run.js';
import { nodePaths, type NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import { loadHostConfig } from '../host/config.js';
import { guestPaths, guestRunnerTarget } from '../host/hooks.js';
import { execPasses } from '../hooks/exec.js';
import { requestHooks } from '../hooks/lock.js';

/**
 * --guest NAME: a shared host's guest (src/host/hooks.ts): the host's config read as the host
 * daemon reads it, the host's hooks directory, the guest's records and runner lock in its staging
 * tree, the host daemon as the daemon.
 */
function guestSetup(values: { root?: string | undefined; config?: string | undefined }, name: string): { host: NodePaths; paths: NodePaths; config: Config; dir: string } {
  if (!/^[-\w.]{1,64}$/.test(name)) throw new UsageError(`--guest ${name}: not a guest name`);
  const host = nodePaths(values.root ?? '/');
  const config = loadHostConfig(host, values.config).node;
  const paths = guestPaths(host, name);
  if (!fs.existsSync(paths.stateDir)) throw new UsageError(`no guest named ${name} has been served on this host`);
  return { host, paths, config, dir: config.hooks.dir ?? host.hooksDir };
}

const USAGE = 'usage: sliceid hooks [run [--again] | exec [--log-format auto|json|journal]] [--guest NAME] [--root DIR] [--config FILE] [--json]\n';

function currentSlice(paths: Parameters<typeof openExistingCache>[0]): { urn: string; slicename: string } | undefined {
  const cache = openExistingCache(paths);
  if (!cache) return undefined;
  try {
    const identity = cachedIdentity(cache).identity?.identity;
    return identity ? { urn: identity.slice.urn, slicename: identity.slicename } : undefined;
  } finally {
    cache.close();
  }
}

function format(report: HookReport, current: { urn: string; slicename: string } | undefined): string {
  const lines: string[] = [];
  // A hook's name and its recorded outcome are the slice's words: escaped.
  const row = (label: string, text: string): void => void lines.push(`${label.padEnd(12)}${operatorText(text)}`);
  const { set, records } = report;
  row('directory', set.dir);
  const named = [
    ...set.hooks.map((h) => ({ name: h.name, text: `allowed  sha256 ${h.hash.slice(0, 16)}` })),
    ...set.refused.map((r) => ({ name: r.name, text: `REFUSED  ${r.reason}` })),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const width = Math.max(0, ...named.map((n) => n.name.length));
  named.forEach((n, i) => row(i === 0 ? 'hooks' : '', `${n.name.padEnd(width)}  ${n.text}`));
  if (!named.length) row('hooks', 'none');
  if (current) {
    const pending = pendingHooks(report, current.urn);
    row('pending', pending.length ? `${pending.join(', ')} (for ${current.slicename})` : 'none');
  }
  row('runner', report.runner.held ? `running, pid ${report.runner.pid ?? 'unknown'}` : 'none running');
  for (const [urn, slice] of Object.entries(records.slices)) {
    row('slice', `${slice.slicename}  ${urn}${current?.urn === urn ? '  (current)' : ''}`);
    for (const [name, run] of Object.entries(slice.hooks)) {
      row('', `  ${name.padEnd(width)}  ${isoTime(run.at)}  ${describeRun(run)}  ${run.durationMs} ms`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export const main = command(USAGE, { again: { type: 'boolean', default: false }, 'log-format': { type: 'string' }, guest: { type: 'string' } }, true, async ({ values, positionals }) => {
  const [sub, ...extra] = positionals;
  if (extra.length || (sub !== undefined && sub !== 'run' && sub !== 'exec')) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0] ?? sub)}`);
  const guest = values.guest === undefined ? undefined : guestSetup(values, values.guest);
  // `paths`: where the records, lock and cache are; `daemonPaths`: the daemon serving the API.
  const { paths, config } = guest ?? setup(values);
  const daemonPaths = guest?.host ?? paths;
  const dir = guest?.dir ?? config.hooks.dir ?? paths.hooksDir;
  if (sub === 'exec') {
    const logger = createLogger({ level: config.log.level, format: logFormatOption(values['log-format']) ?? config.log.format });
    const daemon = runningDaemon(daemonPaths);
    if (!('pid' in daemon) && !daemon.running) {
      logger.error(`slice hooks: ${daemon.why}: hooks run only while the daemon serves their API; nothing run`);
      return 1;
    }
    if (guest) return execPasses(guestRunnerTarget(guest.host, config, values.guest!), config.hooks.timeout * 1000, logger.child({ guest: values.guest }));
    return execHooks(paths, config, logger);
  }
  if (sub === 'run' && values.again) {
    const slice = currentSlice(paths);
    if (slice) {
      const attempt = acquireHooksLock(paths.stateDir);
      if (!('lock' in attempt)) {
        process.stderr.write(`sliceid: a hooks runner is at work (pid ${attempt.heldBy ?? 'unknown'}); run this again once it is done ("sliceid hooks" shows it)\n`);
        return 1;
      }
      try {
        // Holding the runner lock: a run still recorded as running lost its runner (no runner has
        // marked it vanished yet): it is one of the vanished runs too.
        markVanished(paths.hookRecords);
        const names = forgetVanished(paths.hookRecords, slice.urn);
        if (names.length) process.stdout.write(`forgot the vanished runs of ${names.join(', ')} for ${slice.slicename}: they run again\n`);
      } finally {
        attempt.lock.release();
      }
    }
  }
  if (sub === 'run') {
    const daemon = runningDaemon(daemonPaths);
    if (!('pid' in daemon)) {
      process.stderr.write(
        `sliceid: ${daemon.why}: hooks run only under the daemon, which gives them a live API${daemon.running ? '' : '; start it with "sliceid run"'}; nothing signalled\n`,
      );
      return 1;
    }
    // The host daemon starts the runner of each guest that has its request mark.
    if (guest) requestHooks(paths.stateDir);
    process.kill(daemon.pid, 'SIGUSR2');
    process.stdout.write(`asked sliceid (pid ${daemon.pid}) to run the slice hooks that have not run well${guest ? ` for guest ${values.guest}` : ''}; "sliceid hooks${guest ? ` --guest ${values.guest}` : ''}" shows the results\n`);
    return 0;
  }
  const report = hookReport(dir, paths.hookRecords, hooksRunner(paths.stateDir));
  const current = currentSlice(paths);
  if (values.json) {
    const pending = current ? pendingHooks(report, current.urn) : [];
    const { dir, hooks, refused } = report.set;
    process.stdout.write(`${JSON.stringify({ dir, hooks, refused, current, pending, runner: report.runner, slices: report.records.slices }, null, 2)}\n`);
  } else {
    process.stdout.write(format(report, current));
  }
  return 0;
});
