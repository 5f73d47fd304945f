// The testbed's last good word: the answers of `geni-get slice_urn` and `geni-get client_id`, kept
// in the state directory (geniget.json, 0600 in the 0700 directory, written atomically). geni-get
// is asked only at start-up and on an explicit refresh; every other refresh (file events, the
// shrink guard's confirmation, renewal) uses the kept answers, and so does a refresh whose call
// failed or timed out. Only a successful answer replaces a kept one: the slice changes when the
// testbed says so, never because a call failed or a file changed (issue 25).
import fs from 'node:fs';
import path from 'node:path';
import type { NodePaths } from '../paths.js';
import type { Logger } from '../log.js';
import type { Facts } from './facts.js';
import type { GeniGetResult } from './geniget.js';
import { ensureDir, writeFileAtomic } from '../fs/atomic.js';
import { isoTime } from '../time.js';

export const KEPT_COMMANDS = ['slice_urn', 'client_id'] as const;
export type KeptCommand = (typeof KEPT_COMMANDS)[number];
const FACT_OF = { slice_urn: 'sliceUrn', client_id: 'clientId' } as const;

export interface KeptAnswer {
  readonly value: string;
  /** When geni-get gave it (ISO time). */
  readonly at: string;
}

export interface KeptFailure {
  readonly at: string;
  readonly reason: string;
}

export interface KeptState {
  readonly answers: Partial<Record<KeptCommand, KeptAnswer>>;
  /** The last call of each command failed (since its last success): status says so. */
  readonly failed: Partial<Record<KeptCommand, KeptFailure>>;
}

export const EMPTY_KEPT: KeptState = { answers: {}, failed: {} };

/** Bound on a kept value (a URN is at most a few hundred characters). */
const MAX_VALUE = 2048;

export function keptFile(paths: NodePaths): string {
  return path.join(paths.stateDir, 'geniget.json');
}

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** The kept answers; a missing file is none, a garbled one is none too (with a log line). */
export function readKept(paths: NodePaths, logger?: Logger): KeptState {
  const file = keptFile(paths);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger?.warn({ file, err: (err as Error).message }, 'kept geni-get answers unreadable; not used');
    return EMPTY_KEPT;
  }
  try {
    const doc = JSON.parse(text) as { answers?: Record<string, unknown>; failed?: Record<string, unknown> };
    const answers: Partial<Record<KeptCommand, KeptAnswer>> = {};
    const failed: Partial<Record<KeptCommand, KeptFailure>> = {};
    for (const cmd of KEPT_COMMANDS) {
      const a = doc.answers?.[cmd] as { value?: unknown; at?: unknown } | undefined;
      if (a && isText(a.value, MAX_VALUE) && isText(a.at, 64)) answers[cmd] = { value: a.value, at: a.at };
      const f = doc.failed?.[cmd] as { reason?: unknown; at?: unknown } | undefined;
      if (f && isText(f.reason, 1024) && isText(f.at, 64)) failed[cmd] = { reason: f.reason, at: f.at };
    }
    return { answers, failed };
  } catch (err) {
    logger?.warn({ file, err: (err as Error).message }, 'kept geni-get answers garbled; not used');
    return EMPTY_KEPT;
  }
}

/** Write the kept answers (atomically, 0600); false when nothing changed. */
export function writeKept(paths: NodePaths, state: KeptState): boolean {
  ensureDir(paths.stateDir, 0o700);
  return writeFileAtomic(keptFile(paths), `${JSON.stringify(state)}\n`, 0o600);
}

/**
 * The kept state after this refresh's calls (`results`: one per command, undefined when there is
 * no geni-get on the node). A success replaces the kept answer and clears its failure; a failure
 * keeps the answer and records why.
 */
export function afterCalls(kept: KeptState, results: Readonly<Record<KeptCommand, GeniGetResult | undefined>>, now: Date): KeptState {
  const answers = { ...kept.answers };
  const failed = { ...kept.failed };
  for (const cmd of KEPT_COMMANDS) {
    const r = results[cmd];
    if (r?.ok) {
      if (r.output.length <= MAX_VALUE) answers[cmd] = answers[cmd]?.value === r.output ? answers[cmd] : { value: r.output, at: isoTime(now) };
      delete failed[cmd];
    } else if (answers[cmd]) {
      failed[cmd] = { at: isoTime(now), reason: r ? r.reason : 'no geni-get on this node' };
    }
  }
  return { answers, failed };
}

/**
 * Facts from the kept answers (each naming the state file and when the testbed gave it), and one
 * note per command whose last call failed: the identity stands on an answer not confirmed since.
 */
export function keptFacts(paths: NodePaths, kept: KeptState): { facts: Facts; notes: string[] } {
  const facts: Facts = {};
  const notes: string[] = [];
  for (const cmd of KEPT_COMMANDS) {
    const a = kept.answers[cmd];
    if (!a) continue;
    facts[FACT_OF[cmd]] = { value: a.value, where: { source: `geni-get ${cmd} as answered ${a.at} (kept in ${keptFile(paths)})` } };
    const f = kept.failed[cmd];
    if (f) notes.push(`geni-get ${cmd} failed at ${f.at} (${f.reason}): keeping its last good answer ${JSON.stringify(a.value)} of ${a.at}`);
  }
  return { facts, notes };
}
