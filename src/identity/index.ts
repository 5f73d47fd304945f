// The one entry point the CLI (`sliceid once`) and the daemon share: facts -> identity -> GIDs ->
// files. Refused input (InputError) anywhere before the writes leaves every file as it was.
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import type { Facts } from '../sources/facts.js';
import { gatherNodeFacts } from '../sources/gather.js';
import { writeKept } from '../sources/geniget-kept.js';
import { writeIdentityFiles } from '../writers/identity-files.js';
import { operatorAuthority } from './authority.js';
import { commitWrites, planGids, type GidSummary } from './issue.js';
import { deriveIdentity } from './names.js';
import { adoptState, nodeMarks, writeNodeRecord, type SetAsideNote } from './node-record.js';
import type { Identity } from './types.js';

export type { Identity } from './types.js';
export type { GidSummary } from './issue.js';
export type { SetAsideNote } from './node-record.js';

export interface IdentityResult {
  /** The derived identity; node.uuid is the UUID the node GID carries. */
  readonly identity: Identity;
  /** Every fact with its origin (file and line, command, or config). */
  readonly facts: Facts;
  readonly sliceUuid: string;
  readonly nodeUuid: string;
  readonly nodeUuidSource: 'testbed' | 'state';
  readonly gids: { readonly slice: GidSummary; readonly node: GidSummary; readonly authorities: readonly GidSummary[] };
  /** What was (re)issued this time: "authority <toplevel>", "slice", "node". */
  readonly issued: readonly string[];
  /** Identity files (/etc/slicename, /etc/slice.gid, /etc/node.gid) rewritten this time. */
  readonly written: readonly string[];
  /** State files (keys, certificates, state.json) written this time. */
  readonly stateWritten: readonly string[];
  /** When a GID next needs renewing (arm one timer for it). */
  readonly nextRenewal: Date;
  /** Set when this start found state made for another node and set it aside (see node-record.ts). */
  readonly setAside?: SetAsideNote;
  /** Faults that did not stop the identity (a failed geni-get call whose kept answer stands). */
  readonly notes: readonly string[];
}

export interface RefreshOptions {
  /** Ask geni-get (start-up and explicit refresh only; also needs config.geniGet.enabled). */
  readonly geniGet: boolean;
  readonly logger?: Logger;
  readonly now?: Date;
  /** Host name source when the root is "/" (tests). */
  readonly osHostname?: () => string;
  /**
   * A start (`once`, the daemon's first refresh): state made for another node is set aside and
   * made anew. Later refreshes only keep the node record current.
   */
  readonly start?: boolean;
}

export async function refreshIdentity(paths: NodePaths, config: Config, opts: RefreshOptions): Promise<IdentityResult> {
  const now = opts.now ?? new Date();
  const gather = (useKept: boolean) =>
    gatherNodeFacts(paths, config, {
      geniGet: opts.geniGet,
      useKept,
      now,
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.osHostname ? { osHostname: opts.osHostname } : {}),
    });
  let gathered = await gather(true);
  let facts = gathered.facts;
  let derived = deriveIdentity(facts);
  const operator = config.authority ? operatorAuthority(config.authority, now) : undefined;
  let marks = nodeMarks(paths, derived);
  const keep = [config.authority?.cert, config.authority?.key, config.origin?.file].filter((f): f is string => !!f);
  const setAside = opts.start ? adoptState(paths, marks, { now, keep, ...(opts.logger ? { logger: opts.logger } : {}) }) : undefined;
  if (setAside && gathered.usedKept) {
    // The kept geni-get answers were another node's, and went aside with its state (a call of this
    // start failed, or they would not have been used): asked and derived again without them.
    gathered = await gather(false);
    facts = gathered.facts;
    derived = deriveIdentity(facts);
    marks = nodeMarks(paths, derived);
  }
  const notes = [...gathered.notes];
  if (gathered.kept) {
    // After the state is known to be this node's: a fresh answer is never set aside with another's.
    try {
      writeKept(paths, gathered.kept);
    } catch (err) {
      notes.push(`geni-get answers not kept: ${(err as Error).message}`);
    }
  }
  const plan = await planGids(paths, derived, {
    now,
    validityDays: config.gid.validityDays,
    renewBeforeDays: config.gid.renewBeforeDays,
    ...(operator ? { operator } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  // The record first: a kill between the two leaves this node's record over partial state (made
  // up at the next start), never this node's state without a record (set aside as foreign).
  const recordWritten = writeNodeRecord(paths, marks, { now, setAside });
  const stateWritten = [...(recordWritten ? [paths.nodeRecord] : []), ...commitWrites(plan)];
  const written = writeIdentityFiles(paths, { slicename: derived.slicename, sliceGid: plan.sliceChain, nodeGid: plan.nodeChain });
  const identity: Identity = {
    ...derived,
    node: { ...derived.node, uuid: plan.nodeUuid },
    origins: { ...derived.origins, nodeUuid: derived.origins.nodeUuid ?? { source: path.join(plan.gidDir, 'state.json') } },
  };
  opts.logger?.debug({ slicename: identity.slicename, issued: plan.issued, written }, 'identity refreshed');
  return {
    identity,
    facts,
    sliceUuid: plan.sliceUuid,
    nodeUuid: plan.nodeUuid,
    nodeUuidSource: plan.nodeUuidSource,
    gids: { slice: plan.slice, node: plan.node, authorities: plan.authorities },
    issued: plan.issued,
    written,
    stateWritten,
    nextRenewal: plan.nextRenewal,
    ...(setAside ? { setAside } : {}),
    notes,
  };
}
