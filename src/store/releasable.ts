// A key cache whose SQLite connection is open only while it is used. A shared host keeps one cache
// per guest; an open connection holds ~230 KB of the C heap (the parsed schema, the prepared
// statements, the page cache's first block), 11 MB for 50 idle guests, whose answers the API has
// memoized anyway (bench/README.md, issue 23). The connection is opened by the first call that
// needs it and closed by release(), or, for a call made outside hold()/release() (an answer
// built again, another guest's slice listed), once the current event-loop turn is over.
import { openKeyCache } from './cache.js';
import type { SourceId, SourceResult } from '../keys/types.js';
import type { ApplyOutcome, KeyCache, OpenCacheOptions, RefreshRecord, SourceState, UserView } from './types.js';

export class ReleasableKeyCache implements KeyCache {
  private inner: KeyCache | undefined;
  /** Added to the open connection's version: versions keep growing across reopenings. */
  private base = 0;
  private held = false;
  private closeQueued = false;
  private disposed = false;
  /** How many times the connection was opened (tests, status). */
  opens = 0;

  /** Opens the database now, as openKeyCache does (a corrupt file is moved aside at once). */
  constructor(
    private readonly file: string,
    private readonly opts: OpenCacheOptions = {},
  ) {
    this.hold();
    this.db();
    this.release();
  }

  private db(): KeyCache {
    if (this.disposed) throw new Error(`key cache ${this.file} is closed`);
    if (!this.inner) {
      this.inner = openKeyCache(this.file, this.opts);
      this.opens++;
    }
    if (!this.held && !this.closeQueued) {
      this.closeQueued = true;
      setImmediate(() => {
        this.closeQueued = false;
        if (!this.held) this.release();
      });
    }
    return this.inner;
  }

  /** Keep the connection open until release() (a refresh and what follows it). */
  hold(): void {
    this.held = true;
  }

  /** Close the connection now; the next call opens it again. */
  release(): void {
    this.held = false;
    const inner = this.inner;
    if (!inner) return;
    // The version a closed cache reports (base + 1) is the one the connection had.
    this.base += inner.version - 1;
    this.inner = undefined;
    inner.close();
  }

  /** Whether a connection is open now. */
  get isOpen(): boolean {
    return this.inner !== undefined;
  }

  get version(): number {
    return this.base + (this.inner?.version ?? 1);
  }

  applySource(result: SourceResult): ApplyOutcome {
    return this.db().applySource(result);
  }
  dropSource(id: SourceId): boolean {
    return this.db().dropSource(id);
  }
  sliceKeys(): readonly string[] {
    return this.db().sliceKeys();
  }
  users(): readonly UserView[] {
    return this.db().users();
  }
  userKeys(login: string): readonly string[] {
    return this.db().userKeys(login);
  }
  sources(): readonly SourceState[] {
    return this.db().sources();
  }
  getMeta(key: string): string | undefined {
    return this.db().getMeta(key);
  }
  setMeta(key: string, value: string): void {
    this.db().setMeta(key, value);
  }
  recordRefresh(record: RefreshRecord): void {
    this.db().recordRefresh(record);
  }
  lastRefresh(): RefreshRecord | undefined {
    return this.db().lastRefresh();
  }
  close(): void {
    this.release();
    this.disposed = true;
  }
}
