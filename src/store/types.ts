// The key cache as the rest of sliceid sees it (implemented on better-sqlite3 in store/cache.ts).
import type { SourceResult, SourceId } from '../keys/types.js';
import type { Logger } from '../log.js';

export interface SourceState {
  readonly id: SourceId;
  readonly origin: string;
  /** Status of the last attempt: ok, partial, missing, invalid. */
  readonly lastStatus: SourceResult['status'];
  /** Unix ms of the last attempt and of the last time this source's data was replaced. */
  readonly lastAttempt: number;
  readonly lastGood: number | undefined;
  /** True when the data served for this source is older than its last attempt. */
  readonly stale: boolean;
  /** Human sentence: why stale, or problems reported in the last attempt. */
  readonly reason: string | undefined;
  readonly users: number;
  readonly keys: number;
}

export interface ApplyOutcome {
  /** Whether the source's cached users and keys were replaced. */
  readonly applied: boolean;
  /** Whether what is served changed as a result. */
  readonly changed: boolean;
  readonly reason: string;
}

export interface UserView {
  readonly login: string;
  /** The first source (by priority) that knows it wins, for uid and the fields below. */
  readonly uid: number | undefined;
  readonly gid?: number | undefined;
  readonly name?: string | undefined;
  readonly email?: string | undefined;
  /** As written in the source (a node path, not rebased under the root). */
  readonly homedir?: string | undefined;
  readonly urn?: string | undefined;
  /** Key texts in source order, deduplicated. */
  readonly keys: readonly string[];
  /** Sources that list this user, in priority order. */
  readonly sources: readonly SourceId[];
}

export interface RefreshRecord {
  readonly at: number;
  readonly trigger: string;
  readonly durationMs: number;
  readonly changed: boolean;
  readonly summary: string;
}

export interface OpenCacheOptions {
  readonly logger?: Logger | undefined;
  /**
   * Open for reading only (the query commands): never creates, migrates or moves the file; an
   * unusable file gives an empty in-memory cache.
   */
  readonly readonly?: boolean | undefined;
}

export interface KeyCache {
  /**
   * Offer a freshly parsed source. Replaces that source's data in one transaction when it is
   * complete ("ok"), or when it is "partial" and nothing good is cached for it yet; otherwise
   * keeps the last good data and marks the source stale.
   */
  applySource(result: SourceResult): ApplyOutcome;
  /** Forget a source that is no longer configured (e.g. a user's authorized_keys). */
  dropSource(id: SourceId): boolean;
  /** All key texts of the slice, in source order (sources by priority, then file order), unique by type+blob. */
  sliceKeys(): readonly string[];
  users(): readonly UserView[];
  /** One user's keys; empty for an unknown user. */
  userKeys(login: string): readonly string[];
  sources(): readonly SourceState[];
  /** Small persistent key/value facts (slice name, slice uid, identity summary). */
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  recordRefresh(record: RefreshRecord): void;
  lastRefresh(): RefreshRecord | undefined;
  /** Increments whenever served data changes; lets the API memoize encoded replies. */
  readonly version: number;
  close(): void;
}
