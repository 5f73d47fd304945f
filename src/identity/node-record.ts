// Whose state this is. The node record (<stateDir>/node.json, 0600) names the node the state
// directory was made for by three marks:
//   node       the node URN (the testbed's node id in its domain, as the node GID names it)
//   nodeuuid   the testbed's node UUID (/var/emulab/boot/nodeuuid), when it gives one
//   machineId  an app-specific hash of /etc/machine-id (never the id itself), when present and set
// At start (`once`, the daemon's first refresh) state made for another node is set aside before
// anything is issued: the same node means every mark the node has now is the one recorded and every
// recorded mark is still there (a mark gained or lost counts as a difference; re-issuing is the safe
// side of a doubt). A missing or unreadable record is foreign too: a first start after an upgrade
// from a version without records, or a state directory copied from elsewhere.
//
// Set aside: every entry of the state directory except the key cache (users' public keys, not
// identity), earlier set-aside directories and the operator's authority or config files should they
// live there, moves to <stateDir>/set-aside/<UTC time>/, and every private key in it is removed on
// the way. Keys made for another node are exactly what two nodes must never share, so this node
// keeps none of them; certificates and records are public and show the operator what was found.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LOCK_NAME } from '../fs/lock.js';
import { ensureDir, readIfExists, writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import { readFirstLine } from '../sources/emulab.js';
import { NODE_NAME_RE, parseUrn } from './names.js';
import type { Identity } from './types.js';
import { isoTime } from '../time.js';

export interface NodeMarks {
  readonly node: string;
  readonly nodeuuid?: string;
  readonly machineId?: string;
}

/** What a start found and did, kept in the record (and shown by `status`) until the next clean refresh. */
export interface SetAsideNote {
  readonly at: string;
  /** Node name the old state was made for, or undefined when there was no readable record. */
  readonly from: string | undefined;
  readonly on: string;
  /** The marks that differ, or why the record could not be used. */
  readonly differs: readonly string[];
  /** Where the old state went. */
  readonly dir: string;
  /** Private keys removed with it. */
  readonly keysRemoved: number;
  /** "state of pc7 on pc999: issued anew" */
  readonly message: string;
}

export interface NodeRecord extends NodeMarks {
  readonly version: 1;
  /** When state was first made (or set aside and made anew) for these marks. */
  readonly since: string;
  readonly setAside?: SetAsideNote;
}

/** The directory set-aside state goes to, inside the state directory. */
export const SET_ASIDE_DIR = 'set-aside';
const MACHINE_ID_RE = /^[0-9a-f]{32}$/;
/** Read at most this much of a file to tell whether it holds a private key. */
const KEY_SNIFF_BYTES = 64 * 1024;

/** The marks of the node `identity` was derived on. */
export function nodeMarks(paths: NodePaths, identity: Pick<Identity, 'node'>): NodeMarks {
  const machineId = readMachineId(paths.machineId);
  return {
    node: identity.node.urn,
    ...(identity.node.uuid ? { nodeuuid: identity.node.uuid } : {}),
    ...(machineId ? { machineId } : {}),
  };
}

/**
 * /etc/machine-id as an app-specific id (HMAC-SHA256 keyed by the machine id, as systemd advises
 * for ids derived from it): undefined when missing, unreadable, empty or "uninitialized".
 */
function readMachineId(file: string): string | undefined {
  let line: string | undefined;
  try {
    line = readFirstLine(file);
  } catch {
    return undefined;
  }
  if (!line || !MACHINE_ID_RE.test(line)) return undefined;
  return crypto.createHmac('sha256', line).update('sliceid node record').digest('hex');
}

/** The record, or why it cannot be used ("no node record", "node record unreadable: ..."). */
export function readNodeRecord(paths: NodePaths): { record: NodeRecord } | { problem: string } {
  let raw: Buffer | undefined;
  try {
    raw = readIfExists(paths.nodeRecord);
  } catch (err) {
    return { problem: `node record unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}` };
  }
  if (!raw) return { problem: 'no node record' };
  try {
    const r = JSON.parse(raw.toString('utf8')) as Partial<NodeRecord>;
    const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 512;
    const optional = (v: unknown): boolean => v === undefined || str(v);
    if (r.version !== 1 || !str(r.node) || !optional(r.nodeuuid) || !optional(r.machineId) || !str(r.since)) {
      return { problem: 'node record unreadable: not a version 1 record' };
    }
    return { record: r as NodeRecord };
  } catch {
    return { problem: 'node record unreadable: not JSON' };
  }
}

/** The marks that differ between a record and this node ("node", "nodeuuid", "machine-id"). */
export function markDifferences(record: NodeMarks, now: NodeMarks): string[] {
  const out: string[] = [];
  if (record.node !== now.node) out.push('node');
  if (record.nodeuuid !== now.nodeuuid) out.push('nodeuuid');
  if (record.machineId !== now.machineId) out.push('machine-id');
  return out;
}

/** A node URN's name for messages ("pc7"); undefined for anything that is not a node URN. */
function nodeName(urn: string): string | undefined {
  const parsed = parseUrn(urn);
  return parsed && parsed.type === 'node' && NODE_NAME_RE.test(parsed.name) ? parsed.name : undefined;
}

export interface AdoptOptions {
  readonly now: Date;
  /** Files that are not node state even inside the state directory (operator CA, config). */
  readonly keep: readonly string[];
  readonly logger?: Logger;
}

/**
 * At start: when the state directory holds state made for another node (or with no readable
 * record), set it aside and say so (one warning); returns what was done, or undefined when the
 * state is this node's or there is none.
 */
export function adoptState(paths: NodePaths, marks: NodeMarks, opts: AdoptOptions): SetAsideNote | undefined {
  const entries = nodeStateEntries(paths, opts.keep);
  if (entries.length === 0) return undefined;
  const found = readNodeRecord(paths);
  const differs = 'record' in found ? markDifferences(found.record, marks) : [found.problem];
  if (differs.length === 0) return undefined;

  const from = 'record' in found ? nodeName(found.record.node) ?? 'another node' : undefined;
  const on = nodeName(marks.node) ?? marks.node;
  let dir: string;
  let keysRemoved = 0;
  try {
    dir = setAsideDir(paths.stateDir, opts.now);
    for (const name of entries) {
      const source = path.join(paths.stateDir, name);
      const removed = removePrivateKeys(source);
      keysRemoved += removed.count;
      if (!removed.all) fs.renameSync(source, path.join(dir, name));
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`${paths.stateDir}: state made for ${from ?? 'an unknown node'} cannot be set aside (${e.code ?? e.message}); it is not used, nothing issued`);
  }
  const why = from === undefined ? ` (${differs[0]})` : from === on ? ` (${differs.join(', ')} ${differs.length > 1 ? 'differ' : 'differs'})` : '';
  const message = from === undefined ? `state of an unknown node on ${on}${why}: issued anew` : `state of ${from} on ${on}${why}: issued anew`;
  const note: SetAsideNote = { at: isoTime(opts.now), from, on, differs, dir, keysRemoved, message };
  opts.logger?.warn({ from, on, differs, setAside: dir, keysRemoved }, message);
  return note;
}

/**
 * The entries of the state directory that are node state: everything but the key cache (and its
 * WAL files), earlier set-aside state, and entries holding a file of `keep`.
 */
export function nodeStateEntries(paths: NodePaths, keep: readonly string[]): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(paths.stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const cache = path.basename(paths.database);
  const notState = new Set([cache, `${cache}-wal`, `${cache}-shm`, `${cache}-journal`, SET_ASIDE_DIR, LOCK_NAME]);
  return names
    .filter((n) => !notState.has(n))
    .filter((n) => !keep.some((k) => isInside(k, path.join(paths.stateDir, n))))
    .sort();
}

/** Whether `file` is `entry` or lies below it. */
export function isInside(file: string, entry: string): boolean {
  const rel = path.relative(entry, path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** A new <stateDir>/set-aside/<UTC time> directory (0700), suffixed when that second is taken. */
function setAsideDir(stateDir: string, now: Date): string {
  const parent = path.join(stateDir, SET_ASIDE_DIR);
  ensureDir(parent, 0o700);
  const stamp = `${isoTime(now).slice(0, 19).replace(/[-:]/g, '')}Z`;
  for (let i = 1; ; i++) {
    const dir = path.join(parent, i === 1 ? stamp : `${stamp}.${i}`);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Remove every private key at or below `entry` (a `.key` file, or PEM private key text); returns
 * how many, and whether `entry` itself was one.
 */
function removePrivateKeys(entry: string): { count: number; all: boolean } {
  const st = fs.lstatSync(entry);
  if (st.isDirectory()) {
    const count = fs.readdirSync(entry).reduce((n, name) => n + removePrivateKeys(path.join(entry, name)).count, 0);
    return { count, all: false };
  }
  if (!st.isFile() || (!entry.endsWith('.key') && !holdsPrivateKey(entry))) return { count: 0, all: false };
  fs.rmSync(entry, { force: true });
  return { count: 1, all: true };
}

function holdsPrivateKey(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(KEY_SNIFF_BYTES);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).includes('PRIVATE KEY-----');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Record that the state directory is this node's. A record with the same marks keeps its `since`;
 * `setAside` is kept only by the refresh that set state aside (the next clean one drops it).
 * Returns whether the file was written.
 */
export function writeNodeRecord(paths: NodePaths, marks: NodeMarks, opts: { now: Date; setAside?: SetAsideNote | undefined }): boolean {
  const found = readNodeRecord(paths);
  const same = 'record' in found && markDifferences(found.record, marks).length === 0;
  const record: NodeRecord = {
    version: 1,
    node: marks.node,
    ...(marks.nodeuuid ? { nodeuuid: marks.nodeuuid } : {}),
    ...(marks.machineId ? { machineId: marks.machineId } : {}),
    since: same ? found.record.since : isoTime(opts.now),
    ...(opts.setAside ? { setAside: opts.setAside } : {}),
  };
  ensureDir(paths.stateDir, 0o700);
  return writeFileAtomic(paths.nodeRecord, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** For `status`: what the last start set aside, until the next clean refresh; else undefined. */
export function setAsideNotice(paths: NodePaths): string | undefined {
  const found = readNodeRecord(paths);
  const note = 'record' in found ? found.record.setAside : undefined;
  if (!note || typeof note.message !== 'string' || typeof note.dir !== 'string') return undefined;
  return `${note.message} at ${note.at}; the old state is in ${note.dir} (its ${note.keysRemoved} private keys removed)`;
}
