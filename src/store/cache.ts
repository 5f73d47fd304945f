// The key cache on better-sqlite3. One row per source (status, last attempt, last good data),
// the users and keys of each source's last good read, small meta facts and a capped refresh
// history. What the API serves (sliceKeys, users) is computed once per change and kept in memory.
//
// Journal: WAL, so the query commands read while the daemon writes. synchronous=NORMAL: in WAL
// mode the database stays consistent on power loss, only the last commits may be lost; this is a
// cache rebuilt from the testbed files at every start, so the cheaper fsync policy is the right one.
import fs from 'node:fs';
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import { nativeBinding } from './addon.js';
import type { Logger } from '../log.js';
import type { SliceUser, SourceId, SourceResult, SourceStatus } from '../keys/types.js';
import { formatWhere } from '../errors.js';
import { GENI_USER_PRIORITY } from '../keys/geni-user.js';
import { MAX_REFRESHES, SchemaError, migrate, checkSchema, schemaVersion, SCHEMA_VERSION } from './schema.js';
import type { ApplyOutcome, KeyCache, OpenCacheOptions, RefreshRecord, SourceState, UserView } from './types.js';
import { isoTime } from '../time.js';

export const BUSY_TIMEOUT_MS = 5000;

/** Priority when a SourceResult does not carry one: accounts first, geni-get last. */
export function defaultPriority(id: SourceId): number {
  if (id.startsWith('tmcc')) return 0; // tmcc:accounts (and any other tmcc file)
  if (id.startsWith('geni-get')) return GENI_USER_PRIORITY; // geni-get:geni_user
  return 1_000_000;
}

interface SourceRow {
  id: string;
  origin: string;
  priority: number;
  last_status: SourceStatus;
  last_attempt: number;
  last_good: number | null;
  complete: number;
  stale: number;
  reason: string | null;
  digest: string | null;
}

interface Memo {
  keys: readonly string[];
  users: readonly UserView[] | undefined;
  byLogin: Map<string, UserView> | undefined;
}

/** Open (creating or repairing as needed) the cache at `file`. Never throws for a bad file. */
export function openKeyCache(file: string, opts: OpenCacheOptions = {}): KeyCache {
  const db = openDatabase(file, opts);
  return new SqliteKeyCache(db, opts.logger, opts.readonly === true);
}

// ---- opening, and what to do with a file we cannot use ----

const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX']);

function isUnusableFile(err: unknown, file: string): boolean {
  if (err instanceof SchemaError) return true;
  const code = (err as { code?: string }).code ?? '';
  if (CORRUPT_CODES.has(code)) return true;
  // A directory or other non-file where the database should be.
  try {
    return !fs.lstatSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * SQLite's page cache, per connection, in KiB. better-sqlite3 builds SQLite with a 16 MB default
 * (SQLITE_DEFAULT_CACHE_SIZE=-16000), which a 10,000-user cache fills at every refresh and keeps:
 * the daemon reads the tables once per change into its memoized answers (a second copy of the
 * same data), and the kernel's page cache holds the file anyway.
 */
export const PAGE_CACHE_KIB = 1024;

/** Per-connection settings: the page cache size, and no memory-mapped I/O. */
export function tuneConnection(db: Database.Database): void {
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  db.pragma('mmap_size = 0');
}

function setUp(db: Database.Database, readonly: boolean): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  tuneConnection(db);
  if (!readonly) {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal' && db.name !== ':memory:') throw new Error(`cannot switch to WAL (journal_mode is ${String(mode)})`);
    db.pragma('synchronous = NORMAL');
  }
  const check = db.pragma('quick_check(1)', { simple: true });
  if (check !== 'ok') throw new SchemaError(`integrity check failed: ${String(check)}`);
  if (readonly) {
    if (schemaVersion(db) !== SCHEMA_VERSION) throw new SchemaError(`schema version ${schemaVersion(db)} is not ${SCHEMA_VERSION}`);
    checkSchema(db);
  } else {
    migrate(db);
  }
}

function openAt(file: string, readonly: boolean): Database.Database {
  if (!readonly) {
    // Create it 0600 before SQLite does; the -wal and -shm files take the database file's mode.
    fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
    fs.chmodSync(file, 0o600);
  }
  const db = new Database(file, { readonly, fileMustExist: readonly, timeout: BUSY_TIMEOUT_MS, nativeBinding: nativeBinding() });
  try {
    setUp(db, readonly);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function memoryDb(): Database.Database {
  const db = new Database(':memory:', { nativeBinding: nativeBinding() });
  setUp(db, false);
  return db;
}

function stamp(): string {
  return isoTime(new Date()).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Move the database and its side files out of the way; returns the new name. */
export function moveAside(file: string): string {
  let aside = `${file}.corrupt-${stamp()}`;
  for (let n = 1; fs.existsSync(aside); n++) aside = `${file}.corrupt-${stamp()}-${n}`;
  fs.renameSync(file, aside);
  for (const suffix of ['-wal', '-shm', '-journal']) {
    try {
      fs.renameSync(file + suffix, aside + suffix);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return aside;
}

function openDatabase(file: string, opts: OpenCacheOptions): Database.Database {
  const logger = opts.logger;
  const readonly = opts.readonly === true;
  try {
    return openAt(file, readonly);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (readonly) {
      logger?.error({ file, err: message }, 'key cache unreadable; answering from an empty cache');
      return memoryDb();
    }
    if (isUnusableFile(err, file)) {
      try {
        const aside = moveAside(file);
        logger?.error({ file, movedTo: aside, err: message }, 'key cache unusable; moved aside, starting a fresh one');
        return openAt(file, false);
      } catch (err2) {
        logger?.error({ file, err: String(err2) }, 'key cache cannot be recreated; keeping keys in memory only');
        return memoryDb();
      }
    }
    logger?.error({ file, err: message }, 'key cache cannot be opened; keeping keys in memory only');
    return memoryDb();
  }
}

// ---- applying a source ----

interface PreparedUser {
  readonly user: SliceUser;
  readonly keys: SliceUser['keys'];
}

/** Merge repeated logins (keys appended in order), so each user is one row. */
function normaliseUsers(users: readonly SliceUser[]): PreparedUser[] {
  const byLogin = new Map<string, { user: SliceUser; keys: SliceUser['keys'][number][] }>();
  for (const u of users) {
    const have = byLogin.get(u.login);
    if (have) have.keys.push(...u.keys);
    else byLogin.set(u.login, { user: u, keys: [...u.keys] });
  }
  return [...byLogin.values()];
}

function digestOf(users: readonly PreparedUser[]): string {
  const h = crypto.createHash('sha256');
  for (const { user: u, keys } of users) {
    h.update(JSON.stringify([u.login, u.uid ?? null, u.gid ?? null, u.name ?? null, u.email ?? null, u.homedir ?? null, u.urn ?? null]));
    h.update('\n');
    for (const k of keys) {
      h.update(k.text);
      h.update('\n');
    }
    h.update('\0');
  }
  return h.digest('base64');
}

function problemsSummary(result: SourceResult): string | undefined {
  const n = result.problems.length;
  if (n === 0) return undefined;
  const first = result.problems
    .slice(0, 3)
    .map((p) => `${formatWhere(p.where)}: ${p.message}`)
    .join('; ');
  return `${n} record${n === 1 ? '' : 's'} skipped (${first}${n > 3 ? '; ...' : ''})`;
}

function when(ms: number): string {
  return isoTime(ms);
}

class SqliteKeyCache implements KeyCache {
  /**
   * What was computed from the tables for the current version, held weakly: while a refresh (or
   * an answer being built) uses it, it stays; once the API has memoized its encoded replies,
   * nothing needs every key's text a second time (10,000 users: 12 MB), and the next use after a
   * GC reads the tables again (bench/README.md, issue 15).
   */
  private memo: WeakRef<Memo> | undefined;
  private versionCounter = 1;
  private dataVersion: number;
  private readonly st;

  constructor(
    private readonly db: Database.Database,
    private readonly logger: Logger | undefined,
    /** Readers follow the writer's commits; the writer (the daemon, the only one) need not check. */
    private readonly followsWriter: boolean,
  ) {
    this.st = {
      source: db.prepare<[string], SourceRow>('SELECT * FROM sources WHERE id = ?'),
      upsertSource: db.prepare(
        `INSERT INTO sources (id, origin, priority, last_status, last_attempt, last_good, complete, stale, reason, digest)
         VALUES (@id, @origin, @priority, @last_status, @last_attempt, @last_good, @complete, @stale, @reason, @digest)
         ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, priority = excluded.priority,
           last_status = excluded.last_status, last_attempt = excluded.last_attempt, last_good = excluded.last_good,
           complete = excluded.complete, stale = excluded.stale, reason = excluded.reason, digest = excluded.digest`,
      ),
      deleteUsers: db.prepare('DELETE FROM users WHERE source = ?'),
      deleteKeys: db.prepare('DELETE FROM keys WHERE source = ?'),
      deleteSource: db.prepare('DELETE FROM sources WHERE id = ?'),
      insertUser: db.prepare(
        'INSERT INTO users (source, position, login, uid, gid, name, email, homedir, urn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertKey: db.prepare(
        'INSERT INTO keys (source, position, login, type, blob, comment, text, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // A key is the same key wherever it appears when its fingerprint (SHA256 of the blob, which
      // names the type) is: deduplicating by it reads 43 characters per key instead of the blob.
      sliceKeys: db
        .prepare(
          `SELECT k.fingerprint, k.text FROM keys k JOIN sources s ON s.id = k.source
           ORDER BY s.priority, s.id, k.position`,
        )
        .raw(true),
      allUsers: db.prepare(
        `SELECT u.source, u.login, u.uid, u.gid, u.name, u.email, u.homedir, u.urn FROM users u JOIN sources s ON s.id = u.source
         ORDER BY s.priority, s.id, u.position`,
      ),
      allKeys: db
        .prepare(
          `SELECT k.login, k.fingerprint, k.text FROM keys k JOIN sources s ON s.id = k.source
           ORDER BY s.priority, s.id, k.position`,
        )
        .raw(true),
      sources: db.prepare(
        `SELECT s.*, (SELECT count(*) FROM users u WHERE u.source = s.id) AS n_users,
                (SELECT count(*) FROM keys k WHERE k.source = s.id) AS n_keys
         FROM sources s ORDER BY s.priority, s.id`,
      ),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      hasData: db.prepare('SELECT EXISTS (SELECT 1 FROM users WHERE source = ?) OR EXISTS (SELECT 1 FROM keys WHERE source = ?) AS has'),
      getMeta: db.prepare<[string], { v: string }>('SELECT v FROM meta WHERE k = ?'),
      setMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
      insertRefresh: db.prepare('INSERT INTO refreshes (at, trigger, duration_ms, changed, summary) VALUES (?, ?, ?, ?, ?)'),
      trimRefreshes: db.prepare('DELETE FROM refreshes WHERE id <= ?'),
      lastRefresh: db.prepare<[], { at: number; trigger: string; duration_ms: number; changed: number; summary: string }>(
        'SELECT at, trigger, duration_ms, changed, summary FROM refreshes ORDER BY id DESC LIMIT 1',
      ),
    };
    this.dataVersion = this.readDataVersion();
  }

  /** PRAGMA data_version changes only when another connection commits. */
  private readDataVersion(): number {
    return this.st.dataVersion.get() as number;
  }

  /** Another connection (e.g. `sliceid once`) committed: forget what we computed. */
  private checkExternal(): void {
    if (!this.followsWriter) return;
    const dv = this.readDataVersion();
    if (dv !== this.dataVersion) {
      this.dataVersion = dv;
      this.invalidate();
    }
  }

  private invalidate(): void {
    this.memo = undefined;
    this.versionCounter++;
  }

  get version(): number {
    this.checkExternal();
    return this.versionCounter;
  }

  applySource(result: SourceResult): ApplyOutcome {
    const now = Date.now();
    const prev = this.st.source.get(result.id);
    const priority = result.priority ?? prev?.priority ?? defaultPriority(result.id);
    const accept = result.status === 'ok' || (result.status === 'partial' && !prev?.complete);
    const problems = problemsSummary(result);

    if (!accept) {
      const hasGood = prev?.last_good != null;
      const why =
        result.status === 'partial'
          ? `read only in part (${result.reason ?? 'cut short'})`
          : `${result.status}${result.reason ? ` (${result.reason})` : ''}`;
      const reason = hasGood
        ? `${why}; serving its last good data from ${when(prev!.last_good!)}`
        : `${why}; nothing cached for it yet`;
      this.st.upsertSource.run({
        id: result.id,
        origin: result.origin,
        priority: prev?.priority ?? priority,
        last_status: result.status,
        last_attempt: now,
        last_good: prev?.last_good ?? null,
        complete: prev?.complete ?? 0,
        stale: hasGood ? 1 : 0,
        reason: problems ? `${reason}; ${problems}` : reason,
        digest: prev?.digest ?? null,
      });
      return { applied: false, changed: false, reason };
    }

    const users = normaliseUsers(result.users);
    const digest = digestOf(users);
    const dataChanged = prev?.digest !== digest;
    const orderChanged = prev !== undefined && prev.priority !== priority;
    const partialNote = result.status === 'partial' ? `read only in part (${result.reason ?? 'cut short'}); using its complete lines` : undefined;
    const reason = [partialNote, problems].filter(Boolean).join('; ') || undefined;
    const write = this.db.transaction(() => {
      this.st.upsertSource.run({
        id: result.id,
        origin: result.origin,
        priority,
        last_status: result.status,
        last_attempt: now,
        last_good: now,
        complete: result.status === 'ok' ? 1 : 0,
        stale: 0,
        reason: reason ?? null,
        digest,
      });
      if (!dataChanged) return;
      this.st.deleteKeys.run(result.id);
      this.st.deleteUsers.run(result.id);
      let kpos = 0;
      users.forEach(({ user: u, keys }, upos) => {
        this.st.insertUser.run(result.id, upos, u.login, u.uid ?? null, u.gid ?? null, u.name ?? null, u.email ?? null, u.homedir ?? null, u.urn ?? null);
        for (const k of keys) {
          this.st.insertKey.run(result.id, kpos++, u.login, k.type, k.blob, k.comment, k.text, k.fingerprint);
        }
      });
    });
    write.immediate();
    const changed = dataChanged || orderChanged;
    if (changed) this.invalidate();
    return {
      applied: true,
      changed,
      reason: reason ?? (changed ? 'replaced with a complete read' : 'complete read, unchanged'),
    };
  }

  dropSource(id: SourceId): boolean {
    const had = this.st.source.get(id);
    if (!had) return false;
    const has = (this.st.hasData.get(id, id) as { has: number }).has === 1;
    this.db
      .transaction(() => {
        this.st.deleteKeys.run(id);
        this.st.deleteUsers.run(id);
        this.st.deleteSource.run(id);
      })
      .immediate();
    if (has) this.invalidate();
    this.logger?.info({ source: id }, 'key source dropped from the cache');
    return has;
  }

  private compute(): Memo {
    this.checkExternal();
    const held = this.memo?.deref();
    if (held) return held;
    const seen = new Set<string>();
    const keys: string[] = [];
    for (const [fingerprint, text] of this.st.sliceKeys.iterate() as Iterable<[string, string]>) {
      if (seen.has(fingerprint)) continue;
      seen.add(fingerprint);
      keys.push(text);
    }
    const memo: Memo = { keys: Object.freeze(keys), users: undefined, byLogin: undefined };
    this.memo = new WeakRef(memo);
    return memo;
  }

  sliceKeys(): readonly string[] {
    return this.compute().keys;
  }

  private usersMemo(): { users: readonly UserView[]; byLogin: Map<string, UserView> } {
    const memo = this.compute();
    if (memo.users && memo.byLogin) return { users: memo.users, byLogin: memo.byLogin };
    type Mutable = {
      login: string;
      uid: number | undefined;
      gid: number | undefined;
      name: string | undefined;
      email: string | undefined;
      homedir: string | undefined;
      urn: string | undefined;
      keys: string[];
      sources: string[];
      seen: Set<string>;
    };
    const byLogin = new Map<string, Mutable>();
    type UserRow = { source: string; login: string; uid: number | null; gid: number | null; name: string | null; email: string | null; homedir: string | null; urn: string | null };
    for (const r of this.st.allUsers.iterate() as Iterable<UserRow>) {
      let u = byLogin.get(r.login);
      if (!u) {
        u = { login: r.login, uid: undefined, gid: undefined, name: undefined, email: undefined, homedir: undefined, urn: undefined, keys: [], sources: [], seen: new Set() };
        byLogin.set(r.login, u);
      }
      if (!u.sources.includes(r.source)) u.sources.push(r.source);
      if (u.uid === undefined && r.uid !== null) u.uid = r.uid;
      if (u.gid === undefined && r.gid !== null) u.gid = r.gid;
      if (u.name === undefined && r.name !== null) u.name = r.name;
      if (u.email === undefined && r.email !== null) u.email = r.email;
      if (u.homedir === undefined && r.homedir !== null) u.homedir = r.homedir;
      if (u.urn === undefined && r.urn !== null) u.urn = r.urn;
    }
    // A key text the slice memo already holds is shared with it, not read into a second string.
    const held = new Map<string, string>();
    for (const text of memo.keys) held.set(text, text);
    for (const [login, fingerprint, text] of this.st.allKeys.iterate() as Iterable<[string, string, string]>) {
      const u = byLogin.get(login);
      if (!u) continue;
      if (u.seen.has(fingerprint)) continue;
      u.seen.add(fingerprint);
      u.keys.push(held.get(text) ?? text);
    }
    // Every view has the same fields in the same order (one hidden class for all of them, where
    // spreading objects of varying fields made thousands: 2 MB of maps for 10,000 users).
    const views = new Map<string, UserView>();
    for (const u of byLogin.values()) {
      const view: UserView = {
        login: u.login,
        uid: u.uid,
        gid: u.gid,
        name: u.name,
        email: u.email,
        homedir: u.homedir,
        urn: u.urn,
        keys: Object.freeze(u.keys),
        sources: Object.freeze(u.sources),
      };
      views.set(u.login, Object.freeze(view));
    }
    memo.users = Object.freeze([...views.values()]);
    memo.byLogin = views;
    return { users: memo.users, byLogin: views };
  }

  users(): readonly UserView[] {
    return this.usersMemo().users;
  }

  userKeys(login: string): readonly string[] {
    return this.usersMemo().byLogin.get(login)?.keys ?? [];
  }

  sources(): readonly SourceState[] {
    type Row = SourceRow & { n_users: number; n_keys: number };
    return (this.st.sources.all() as Row[]).map((r) => ({
      id: r.id,
      origin: r.origin,
      lastStatus: r.last_status,
      lastAttempt: r.last_attempt,
      lastGood: r.last_good ?? undefined,
      stale: r.stale === 1,
      reason: r.reason ?? undefined,
      users: r.n_users,
      keys: r.n_keys,
    }));
  }

  getMeta(key: string): string | undefined {
    return this.st.getMeta.get(key)?.v;
  }

  setMeta(key: string, value: string): void {
    this.st.setMeta.run(key, value);
  }

  recordRefresh(record: RefreshRecord): void {
    this.db
      .transaction(() => {
        const info = this.st.insertRefresh.run(record.at, record.trigger, record.durationMs, record.changed ? 1 : 0, record.summary);
        this.st.trimRefreshes.run(Number(info.lastInsertRowid) - MAX_REFRESHES);
      })
      .immediate();
  }

  lastRefresh(): RefreshRecord | undefined {
    const r = this.st.lastRefresh.get();
    return r ? { at: r.at, trigger: r.trigger, durationMs: r.duration_ms, changed: r.changed === 1, summary: r.summary } : undefined;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
