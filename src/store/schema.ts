// The key cache's SQLite schema, versioned with PRAGMA user_version. Version 0 is an empty file;
// each step below takes the database one version up inside a transaction.
import type { Database } from 'better-sqlite3';

export const SCHEMA_VERSION = 1;

/** Refresh history kept (older rows are deleted). */
export const MAX_REFRESHES = 1000;

const V1 = `
CREATE TABLE sources (
  id           TEXT PRIMARY KEY,
  origin       TEXT NOT NULL,
  priority     INTEGER NOT NULL,
  last_status  TEXT NOT NULL CHECK (last_status IN ('ok', 'partial', 'missing', 'invalid')),
  last_attempt INTEGER NOT NULL,
  last_good    INTEGER,
  complete     INTEGER NOT NULL DEFAULT 0,
  stale        INTEGER NOT NULL DEFAULT 0,
  reason       TEXT,
  digest       TEXT
) STRICT;

CREATE TABLE users (
  source   TEXT NOT NULL,
  position INTEGER NOT NULL,
  login    TEXT NOT NULL,
  uid      INTEGER,
  gid      INTEGER,
  name     TEXT,
  email    TEXT,
  homedir  TEXT,
  urn      TEXT,
  PRIMARY KEY (source, position),
  UNIQUE (source, login)
) STRICT;

CREATE TABLE keys (
  source      TEXT NOT NULL,
  position    INTEGER NOT NULL,
  login       TEXT NOT NULL,
  type        TEXT NOT NULL,
  blob        TEXT NOT NULL,
  comment     TEXT NOT NULL,
  text        TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (source, position)
) STRICT;
CREATE INDEX keys_fingerprint ON keys (fingerprint);

CREATE TABLE meta (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
) STRICT;

CREATE TABLE refreshes (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  trigger     TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  changed     INTEGER NOT NULL,
  summary     TEXT NOT NULL
) STRICT;
`;

/** Migrations: index i takes the schema from version i to i + 1. */
const STEPS: readonly string[] = [V1];

export class SchemaError extends Error {
  override readonly name = 'SchemaError';
}

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Bring the schema up to SCHEMA_VERSION. Throws SchemaError for a newer or inconsistent database. */
export function migrate(db: Database): void {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) throw new SchemaError(`schema version ${from} is newer than this sliceid's ${SCHEMA_VERSION}`);
  if (from === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0) throw new SchemaError('database has tables but no schema version: not a sliceid cache');
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(STEPS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  checkSchema(db);
}

/** The tables this version needs are there. */
export function checkSchema(db: Database): void {
  const have = new Set(
    (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
  );
  for (const t of ['sources', 'users', 'keys', 'meta', 'refreshes']) {
    if (!have.has(t)) throw new SchemaError(`table ${t} is missing`);
  }
}
