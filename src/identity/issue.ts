// Issuing the slice and node GIDs with stability: a refresh re-issues nothing unless something
// the certificate says changed. Everything is computed in memory first (planGids); the state files
// are written only when the whole plan stands (commitWrites).
//
// State directory (<stateDir>/gid, 0700; every file 0600):
//   authority-<toplevel>.key/.pem   node-local authority per top-level authority
//   slice.key/.pem, node.key/.pem   the leaves
//   state.json                      node UUID when the testbed gives none, recent serials
//
// A leaf is re-issued when its URN changes (with a new key), its key is missing or unreadable
// (new key), its certificate is missing, unreadable or not its key's, its UUID changes, its issuer
// no longer verifies it (authority re-keyed or operator CA changed), or it expires within
// renewBeforeDays. Otherwise the same key, UUID and certificate bytes are kept.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, readIfExists, writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import {
  authorityCovers,
  localAuthority,
  readSlot,
  topLevelOf,
  type Authority,
  type PendingWrite,
} from './authority.js';
import { buildGid, generateRsaKey, gidCommonName, newSerial, parseGid, signedBy, type GidInfo, DAY_MS } from './gid.js';
import type { Identity } from './types.js';
import { urnToHrn } from './names.js';
import { sliceUuid } from './uuid.js';
import { isoTime } from '../time.js';

const KEEP_SERIALS = 64;

export interface IssueOptions {
  readonly now: Date;
  readonly validityDays: number;
  readonly renewBeforeDays: number;
  /** The operator's authority, when configured (see operatorAuthority). */
  readonly operator?: Authority;
  readonly logger?: Logger;
}

export interface GidSummary {
  readonly urn: string;
  readonly hrn: string;
  readonly uuid: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly ca: boolean;
  readonly issuer: string;
  readonly issuerKind: 'local' | 'operator' | 'self';
}

export interface GidPlan {
  /** Full PEM chains for /etc/slice.gid and /etc/node.gid (leaf, then its issuers). */
  readonly sliceChain: string;
  readonly nodeChain: string;
  readonly slice: GidSummary;
  readonly node: GidSummary;
  readonly authorities: readonly GidSummary[];
  readonly sliceUuid: string;
  readonly nodeUuid: string;
  /** Where the node UUID came from when not from the testbed. */
  readonly nodeUuidSource: 'testbed' | 'state';
  /** What was (re)issued: "authority <toplevel>", "slice", "node". */
  readonly issued: readonly string[];
  /** The earliest moment a GID this node renews falls within renewBeforeDays of expiry. */
  readonly nextRenewal: Date;
  /** State files to write (keys and certificates 0600, state.json). */
  readonly writes: readonly PendingWrite[];
  readonly stateDir: string;
  readonly gidDir: string;
}

interface StateFile {
  version: 1;
  nodeUuid?: string;
  serials: string[];
}

/** The directory of GID keys and certificates inside the state directory. */
export function gidDir(paths: NodePaths): string {
  return path.join(paths.stateDir, 'gid');
}

function readState(file: string): StateFile {
  try {
    const raw = readIfExists(file);
    if (!raw) return { version: 1, serials: [] };
    const parsed = JSON.parse(raw.toString('utf8')) as Partial<StateFile>;
    return {
      version: 1,
      ...(typeof parsed.nodeUuid === 'string' && /^[0-9a-f-]{36}$/.test(parsed.nodeUuid) ? { nodeUuid: parsed.nodeUuid } : {}),
      serials: Array.isArray(parsed.serials) ? parsed.serials.filter((s): s is string => typeof s === 'string') : [],
    };
  } catch {
    return { version: 1, serials: [] };
  }
}

function summary(info: GidInfo, issuer: Pick<Authority, 'hrn' | 'kind'> | undefined): GidSummary {
  return {
    urn: info.urn!,
    hrn: info.hrn!,
    uuid: info.uuid!,
    serial: info.serial,
    notBefore: isoTime(info.notBefore),
    notAfter: isoTime(info.notAfter),
    ca: info.ca,
    issuer: issuer ? issuer.hrn : info.hrn!,
    issuerKind: issuer ? issuer.kind : 'self',
  };
}

/** Work out the GIDs for `identity`, reusing what the state directory holds. Writes nothing. */
export async function planGids(paths: NodePaths, identity: Identity, opts: IssueOptions): Promise<GidPlan> {
  const dir = gidDir(paths);
  const stateFile = path.join(dir, 'state.json');
  const state = readState(stateFile);
  const writes: PendingWrite[] = [];
  const issued: string[] = [];
  const renewBefore = opts.renewBeforeDays * DAY_MS;
  const now = opts.now.getTime();

  // UUIDs.
  const sUuid = sliceUuid(identity.slice.urn);
  let nodeUuid = identity.node.uuid;
  let nodeUuidSource: 'testbed' | 'state' = 'testbed';
  if (!nodeUuid) {
    nodeUuid = state.nodeUuid ?? crypto.randomUUID();
    nodeUuidSource = 'state';
  }
  const nextState: StateFile = { version: 1, ...(nodeUuidSource === 'state' ? { nodeUuid } : state.nodeUuid ? { nodeUuid: state.nodeUuid } : {}), serials: [...state.serials] };

  // Issuers: the operator's where it is an authority for the leaf, else the local one for its top level.
  const locals = new Map<string, Authority>();
  const issuerFor = async (urn: string, what: string): Promise<Authority> => {
    const hrn = urnToHrn(urn);
    if (opts.operator) {
      if (authorityCovers(opts.operator, hrn)) return opts.operator;
      opts.logger?.warn({ operator: opts.operator.hrn, [what]: hrn }, `the operator's authority is not an authority of the ${what} GID; a node-local authority signs it`);
    }
    const top = topLevelOf(urn);
    let auth = locals.get(top);
    if (!auth) {
      const local = await localAuthority(dir, top, opts);
      auth = local.authority;
      locals.set(top, auth);
      writes.push(...local.writes);
      if (local.issued) issued.push(`authority ${top}`);
    }
    return auth;
  };
  const sliceIssuer = await issuerFor(identity.slice.urn, 'slice');
  const nodeIssuer = await issuerFor(identity.node.urn, 'node');

  const serial = (): string => {
    let s = newSerial();
    while (nextState.serials.includes(s)) s = newSerial();
    nextState.serials = [...nextState.serials, s].slice(-KEEP_SERIALS);
    return s;
  };

  // Leaves: decide first (so keys can be generated concurrently), then build.
  const leaves = [
    { name: 'slice', urn: identity.slice.urn, uuid: sUuid, issuer: sliceIssuer },
    { name: 'node', urn: identity.node.urn, uuid: nodeUuid, issuer: nodeIssuer },
  ] as const;
  const decisions = leaves.map((leaf) => {
    const slot = readSlot(dir, leaf.name);
    const c = slot.cert;
    const sameUrn = !!c && c.urn === leaf.urn;
    const keep =
      !!slot.key &&
      !!c &&
      slot.matches &&
      sameUrn &&
      c.cn === gidCommonName(urnToHrn(leaf.urn), leaf.uuid) &&
      c.uuid === leaf.uuid &&
      !c.ca &&
      signedBy(c, leaf.issuer.info) &&
      c.notBefore.getTime() <= now &&
      now < c.notAfter.getTime() - renewBefore;
    // A new key when the URN changes (another principal) or the key is gone; a renewal keeps it.
    const newKey = !slot.key || !c || !sameUrn;
    return { leaf, slot, keep, newKey };
  });
  const keys = await Promise.all(
    decisions.map((d) => (d.newKey ? generateRsaKey() : Promise.resolve(d.slot.key!))),
  );
  const built = decisions.map((d, i) => {
    const key = keys[i]!;
    if (d.keep) return { info: d.slot.cert!, issuer: d.leaf.issuer };
    const pem = buildGid({
      urn: d.leaf.urn,
      uuid: d.leaf.uuid,
      subjectKey: key,
      issuer: { cert: d.leaf.issuer.cert, key: d.leaf.issuer.key },
      ca: false,
      now: opts.now,
      validityDays: opts.validityDays,
      serial: serial(),
    });
    if (key !== d.slot.key) writes.push({ file: d.slot.keyFile, data: key, mode: 0o600 });
    writes.push({ file: d.slot.certFile, data: pem, mode: 0o600 });
    issued.push(d.leaf.name);
    return { info: parseGid(pem), issuer: d.leaf.issuer };
  });
  const [slice, node] = built as [(typeof built)[0], (typeof built)[0]];

  // Remember the issued serials (authority ones included) and a node UUID made here.
  for (const auth of locals.values()) {
    if (!nextState.serials.includes(auth.info.serial)) nextState.serials = [...nextState.serials, auth.info.serial].slice(-KEEP_SERIALS);
  }
  const stateText = `${JSON.stringify(nextState, null, 2)}\n`;
  if (stateText !== readIfExists(stateFile)?.toString('utf8')) writes.push({ file: stateFile, data: stateText, mode: 0o600 });

  // The one timer the daemon arms: the first GID (leaf or local authority) due for renewal.
  const renewable = [slice.info, node.info, ...[...locals.values()].map((a) => a.info)];
  const nextRenewal = new Date(Math.max(now, Math.min(...renewable.map((g) => g.notAfter.getTime() - renewBefore))));

  return {
    sliceChain: slice.info.pem + slice.issuer.chain,
    nodeChain: node.info.pem + node.issuer.chain,
    slice: summary(slice.info, slice.issuer),
    node: summary(node.info, node.issuer),
    authorities: [...new Set([sliceIssuer, nodeIssuer])].map((a) =>
      summary(a.info, a.kind === 'local' ? undefined : { hrn: a.info.issuerCn ?? '', kind: 'operator' }),
    ),
    sliceUuid: sUuid,
    nodeUuid,
    nodeUuidSource,
    issued,
    nextRenewal,
    writes,
    stateDir: paths.stateDir,
    gidDir: dir,
  };
}

/** Files in the GID directory (keys, certificates) that someone made readable beyond root: 0600 again. */
export function keepPrivate(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(dir, entry.name);
    if (fs.lstatSync(file).mode & 0o077) fs.chmodSync(file, 0o600);
  }
}

/** Write the plan's state files (directories 0700, files 0600); returns the files written. */
export function commitWrites(plan: Pick<GidPlan, 'writes' | 'stateDir' | 'gidDir'>): string[] {
  ensureDir(plan.stateDir, 0o700);
  ensureDir(plan.gidDir, 0o700);
  keepPrivate(plan.gidDir);
  const written: string[] = [];
  for (const w of plan.writes) {
    if (writeFileAtomic(w.file, w.data, w.mode)) written.push(w.file);
  }
  return written;
}
