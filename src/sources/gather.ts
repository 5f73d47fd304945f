// All facts about this node, merged with precedence config > geni-get > Emulab boot files > host name.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import { configFacts } from './config-facts.js';
import { emulabFacts } from './emulab.js';
import { mergeFacts, type Facts } from './facts.js';
import { geniGet, runGeniGet } from './geniget.js';
import { hostnameFacts } from './hostname.js';
import { afterCalls, EMPTY_KEPT, keptFacts, readKept, type KeptState } from './geniget-kept.js';

/** `geni-get slice_urn` and `geni-get client_id`, run concurrently; absent or failing means no fact. */
export async function geniGetFacts(paths: NodePaths, opts: { timeoutMs: number; logger?: Logger }): Promise<Facts> {
  const [sliceUrn, clientId] = await Promise.all([geniGet(paths, 'slice_urn', opts), geniGet(paths, 'client_id', opts)]);
  const facts: Facts = {};
  // geni-get prints one value; anything else (several lines) is refused later by the URN rules.
  if (sliceUrn) facts.sliceUrn = { value: sliceUrn.output, where: sliceUrn.where };
  if (clientId) facts.clientId = { value: clientId.output, where: clientId.where };
  return facts;
}

export async function gatherFacts(
  paths: NodePaths,
  config: Config,
  opts: { geniGet: boolean; logger?: Logger; osHostname?: () => string },
): Promise<Facts> {
  const fromGeniGet =
    opts.geniGet && config.geniGet.enabled
      ? await geniGetFacts(paths, { timeoutMs: config.geniGet.timeoutMs, ...(opts.logger ? { logger: opts.logger } : {}) })
      : {};
  return mergeFacts(
    configFacts(config),
    fromGeniGet,
    emulabFacts(paths),
    hostnameFacts(paths, opts.osHostname ? { osHostname: opts.osHostname } : {}),
  );
}

/** The node's facts, with the testbed's kept word (src/sources/geniget-kept.ts). */
export interface GatheredFacts {
  readonly facts: Facts;
  /** Faults to report: a geni-get call failed (now or at its last try) and its kept answer stands. */
  readonly notes: readonly string[];
  /** The kept answers after this refresh's calls, to write once the state is known to be this node's. */
  readonly kept: KeptState | undefined;
  /** A fact came from a kept answer (not from a call made now). */
  readonly usedKept: boolean;
}

/**
 * All facts, as gatherFacts, except that geni-get's answers are the testbed's last good word:
 * asked (`geniGet`), a successful answer is used and kept; a failed or timed-out call, or a refresh
 * that does not ask, uses the kept answer. `useKept: false` ignores what is kept (state set aside).
 * With geni-get disabled in the config, neither calls nor kept answers are used.
 */
export async function gatherNodeFacts(
  paths: NodePaths,
  config: Config,
  opts: { geniGet: boolean; useKept?: boolean; logger?: Logger; osHostname?: () => string; now?: Date },
): Promise<GatheredFacts> {
  const rest = (): Facts[] => [emulabFacts(paths), hostnameFacts(paths, opts.osHostname ? { osHostname: opts.osHostname } : {})];
  if (!config.geniGet.enabled) return { facts: mergeFacts(configFacts(config), ...rest()), notes: [], kept: undefined, usedKept: false };
  let kept = opts.useKept === false ? EMPTY_KEPT : readKept(paths, opts.logger);
  const fresh: Facts = {};
  let next: KeptState | undefined;
  if (opts.geniGet) {
    const run = { timeoutMs: config.geniGet.timeoutMs, ...(opts.logger ? { logger: opts.logger } : {}) };
    const [sliceUrn, clientId] = await Promise.all([runGeniGet(paths, 'slice_urn', run), runGeniGet(paths, 'client_id', run)]);
    if (sliceUrn?.ok) fresh.sliceUrn = { value: sliceUrn.output, where: sliceUrn.where };
    if (clientId?.ok) fresh.clientId = { value: clientId.output, where: clientId.where };
    const after = afterCalls(kept, { slice_urn: sliceUrn, client_id: clientId }, opts.now ?? new Date());
    // Written only when it changed (a node without geni-get never gets the file).
    if (JSON.stringify(after) !== JSON.stringify(kept)) next = after;
    kept = after;
  }
  const fromKept = keptFacts(paths, kept);
  const fromConfig = configFacts(config);
  // A fact the operator set wins over geni-get's, kept or not: nothing to report about it then.
  const notes = fromKept.notes.filter((n) => !(n.startsWith('geni-get slice_urn') ? fromConfig.sliceUrn : fromConfig.clientId));
  const usedKept = (!fresh.sliceUrn && !!fromKept.facts.sliceUrn) || (!fresh.clientId && !!fromKept.facts.clientId);
  return {
    facts: mergeFacts(fromConfig, fresh, fromKept.facts, ...rest()),
    notes,
    kept: next,
    usedKept,
  };
}
