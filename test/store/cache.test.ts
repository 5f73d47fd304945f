import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { nodePaths } from '../../src/paths.js';
import { collectKeySources, collectFileSources } from '../../src/keys/collect.js';
import { readAccounts } from '../../src/keys/accounts.js';
import { parseKeyText } from '../../src/keys/sshkey.js';
import { openKeyCache, PAGE_CACHE_KIB, tuneConnection } from '../../src/store/cache.js';
import { SCHEMA_VERSION, MAX_REFRESHES } from '../../src/store/schema.js';
import type { SourceResult, SliceUser } from '../../src/keys/types.js';
import type { KeyCache } from '../../src/store/types.js';
import { brokenTrees, copyTree, goodTrees, sharedFixtures, ownFixtures, tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from '../keys/keygen.js';

function dbFile(): string {
  const dir = path.join(tempDir(), 'state');
  fs.mkdirSync(dir, { mode: 0o700 });
  return path.join(dir, 'cache.db');
}

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

function source(id: string, status: SourceResult['status'], users: Array<[string, string[]]>, priority?: number): SourceResult {
  const out: SliceUser[] = users.map(([login, keys]) => ({ login, keys: keys.map((k) => parseKeyText(k, { source: id })) }));
  return { id, origin: `/origin/${id}`, status, users: out, problems: [], ...(priority === undefined ? {} : { priority }) };
}

async function load(cache: KeyCache, root: string, geniGet = true): Promise<SourceResult[]> {
  const sources = await collectKeySources(nodePaths(root), { geniGet, timeoutMs: 5000 });
  for (const s of sources) cache.applySource(s);
  return sources;
}

test('every fixture: collect -> cache -> every cached key and users as expected.json says', async (t) => {
  for (const tree of goodTrees()) {
    const cache = openKeyCache(dbFile());
    await load(cache, copyTree(tree.source));
    const [slice, expected] = Object.entries(tree.expected.GetSSHKeys_all_types)[0] ?? [tree.expected.slicename, ''];
    const keys = cache.sliceKeys();
    if (expected === '') t.deepEqual(keys, [], `${tree.label}: no keys`);
    else t.is(keys.join('\n'), expected, `${tree.label} ${slice}`);
    const users = Object.fromEntries(cache.users().filter((u) => u.keys.length > 0).map((u) => [u.login, [...u.keys]]));
    t.deepEqual(users, tree.expected.users, tree.label);
    for (const [login, want] of Object.entries(tree.expected.users)) t.deepEqual([...cache.userKeys(login)], want);
    t.deepEqual([...cache.userKeys('nobody')], []);
    cache.close();
  }
});

test('hostname-only: no source, status says why', async (t) => {
  for (const tree of goodTrees().filter((g) => g.name === 'hostname-only')) {
    const cache = openKeyCache(dbFile());
    await load(cache, copyTree(tree.source));
    t.deepEqual(cache.sliceKeys(), []);
    const [s] = cache.sources();
    t.like(s, { id: 'tmcc:accounts', lastStatus: 'missing', stale: false, lastGood: undefined, users: 0, keys: 0 });
    t.regex(s!.reason!, /does not exist\); nothing cached/);
    cache.close();
  }
});

test('broken/garbage-keys: only the good key is served, problems in the source state', async (t) => {
  for (const tree of brokenTrees('garbage-keys')) {
    const cache = openKeyCache(dbFile());
    const root = copyTree(tree.source);
    const [accounts] = await load(cache, root, false);
    t.is(cache.sliceKeys().length, 1, tree.label);
    t.regex(cache.sliceKeys()[0]!, /^ssh-ed25519 \S+ (alice|ada)@laptop$/);
    const file = path.join(root, 'var/emulab/boot/tmcc/accounts');
    for (const p of accounts!.problems) t.true(p.where.source === file && typeof p.where.line === 'number');
    const state = cache.sources()[0]!;
    t.like(state, { lastStatus: 'ok', stale: false, keys: 1 });
    t.regex(state.reason!, new RegExp(`${accounts!.problems.length} records skipped \\(${file}:3: `));
    cache.close();
  }
});

test('broken/truncated-accounts after a good file: last good keys kept, source stale; alone: its complete lines used', async (t) => {
  for (const [set, dir] of [['own', ownFixtures], ['shared', sharedFixtures]] as const) {
    if (!fs.existsSync(dir)) continue;
    const good = readAccounts(path.join(dir, 'emulab-pnode/var/emulab/boot/tmcc/accounts'));
    const cut = readAccounts(path.join(dir, 'broken/truncated-accounts/var/emulab/boot/tmcc/accounts'));
    t.is(cut.status, 'partial');

    const cache = openKeyCache(dbFile());
    t.like(cache.applySource(good), { applied: true, changed: true });
    const served = cache.sliceKeys();
    const v = cache.version;
    const outcome = cache.applySource(cut);
    t.like(outcome, { applied: false, changed: false }, set);
    t.regex(outcome.reason, /read only in part.*serving its last good data/);
    t.is(cache.sliceKeys(), served, 'same memoized array: nothing recomputed');
    t.is(cache.version, v);
    t.like(cache.sources()[0], { lastStatus: 'partial', stale: true });
    t.regex(cache.sources()[0]!.reason!, /records? skipped \(.*accounts:3: /);
    // Missing (Emulab rewriting the directory) keeps them too; the complete file clears the flag.
    t.like(cache.applySource({ ...good, status: 'missing', users: [], problems: [] }), { applied: false });
    t.deepEqual(cache.sliceKeys(), served);
    t.like(cache.applySource(good), { applied: true, changed: false });
    t.like(cache.sources()[0], { lastStatus: 'ok', stale: false, reason: undefined });
    cache.close();

    const fresh = openKeyCache(dbFile());
    t.like(fresh.applySource(cut), { applied: true, changed: true });
    t.is(fresh.sliceKeys().length, 1);
    t.regex(fresh.sliceKeys()[0]!, /^ssh-rsa /);
    t.like(fresh.sources()[0], { lastStatus: 'partial', stale: false });
    // A later partial replaces a partial (no complete data yet); an ok replaces it; then partial is refused.
    t.like(fresh.applySource({ ...cut, users: [] }), { applied: true, changed: true });
    t.like(fresh.applySource(good), { applied: true, changed: true });
    t.like(fresh.applySource(cut), { applied: false });
    t.deepEqual(fresh.sliceKeys(), served);
    fresh.close();
  }
});

test('apply rules: invalid keeps data; ok with fewer keys replaces in one go', (t) => {
  const [a, b, c] = [randomEd25519('a'), randomEd25519('b'), randomEd25519('c')];
  const cache = openKeyCache(dbFile());
  cache.applySource(source('tmcc:accounts', 'ok', [['amy', [a, b]], ['bo', [c]]]));
  t.deepEqual(cache.sliceKeys(), [a, b, c]);
  t.like(cache.applySource(source('tmcc:accounts', 'invalid', [])), { applied: false, changed: false });
  t.deepEqual(cache.sliceKeys(), [a, b, c]);
  t.like(cache.sources()[0], { lastStatus: 'invalid', stale: true, users: 2, keys: 3 });
  t.like(cache.applySource(source('tmcc:accounts', 'ok', [['amy', [b]]])), { applied: true, changed: true });
  t.deepEqual(cache.sliceKeys(), [b]);
  t.deepEqual(cache.users().map((u) => u.login), ['amy']);
  cache.close();
});

test('sliceKeys: priority order, then position; unique by type+blob, first wins', (t) => {
  const [a, b, c, d] = [randomEd25519('a'), randomEd25519('b'), randomEd25519('c'), randomEd25519('d')];
  const bAgain = b.replace(/ b$/, ' b-from-geni');
  const cache = openKeyCache(dbFile());
  cache.applySource(source('geni-get:geni_user', 'ok', [['bo', [bAgain, d]]]));
  cache.applySource(source('authorized_keys:cy', 'ok', [['cy', [c, a]]], 2));
  cache.applySource(source('tmcc:accounts', 'ok', [['amy', [a]], ['bo', [b]]]));
  t.deepEqual(cache.sliceKeys(), [a, b, c, d]);
  const bo = cache.users().find((u) => u.login === 'bo')!;
  t.deepEqual(bo.keys, [b, d]);
  t.deepEqual(bo.sources, ['tmcc:accounts', 'geni-get:geni_user']);
  t.deepEqual(cache.users().map((u) => u.login), ['amy', 'bo', 'cy']);
  // Moving a source in priority changes the order (and counts as a change).
  const v = cache.version;
  t.like(cache.applySource(source('authorized_keys:cy', 'ok', [['cy', [c, a]]], 2_000_000_000)), { changed: true });
  t.true(cache.version > v);
  t.deepEqual(cache.sliceKeys(), [a, b, d, c]);
  cache.close();
});

test('memo and version: recomputed only when data changes', (t) => {
  const [a, b] = [randomEd25519('a'), randomEd25519('b')];
  const cache = openKeyCache(dbFile());
  const s = source('tmcc:accounts', 'ok', [['amy', [a]]]);
  cache.applySource(s);
  const first = cache.sliceKeys();
  const users = cache.users();
  const v = cache.version;
  t.is(cache.sliceKeys(), first);
  t.is(cache.users(), users);
  t.like(cache.applySource(s), { applied: true, changed: false });
  t.is(cache.version, v);
  t.is(cache.sliceKeys(), first);
  cache.setMeta('identity', '{}');
  cache.recordRefresh({ at: 1, trigger: 't', durationMs: 1, changed: false, summary: '' });
  t.is(cache.version, v);
  t.like(cache.applySource(source('tmcc:accounts', 'ok', [['amy', [a, b]]])), { changed: true });
  t.true(cache.version > v);
  t.not(cache.sliceKeys(), first);
  t.deepEqual(cache.sliceKeys(), [a, b]);
  t.true(Object.isFrozen(cache.sliceKeys()));
  cache.close();
});

test('dropSource forgets a source and its keys', (t) => {
  const [a, b] = [randomEd25519('a'), randomEd25519('b')];
  const cache = openKeyCache(dbFile());
  cache.applySource(source('tmcc:accounts', 'ok', [['amy', [a]]]));
  cache.applySource(source('authorized_keys:bo', 'ok', [['bo', [b]]], 1));
  t.true(cache.dropSource('authorized_keys:bo'));
  t.false(cache.dropSource('authorized_keys:bo'));
  t.deepEqual(cache.sliceKeys(), [a]);
  t.deepEqual(cache.sources().map((s) => s.id), ['tmcc:accounts']);
  cache.close();
});

test('restart: with the key sources deleted, the cached keys are still served', async (t) => {
  for (const tree of goodTrees().filter((g) => Object.values(g.expected.GetSSHKeys_all_types).some((k) => k !== ''))) {
    const file = dbFile();
    const root = copyTree(tree.source);
    let cache = openKeyCache(file);
    await load(cache, root);
    const served = [...cache.sliceKeys()];
    const users = cache.users();
    cache.setMeta('slicename', tree.expected.slicename);
    cache.recordRefresh({ at: 42, trigger: 'start', durationMs: 3.5, changed: true, summary: 's' });
    cache.close();

    fs.rmSync(path.join(root, 'var/emulab/boot'), { recursive: true, force: true });
    fs.rmSync(path.join(root, 'users'), { recursive: true, force: true });
    fs.rmSync(path.join(root, 'usr'), { recursive: true, force: true });
    cache = openKeyCache(file);
    t.deepEqual([...cache.sliceKeys()], served, tree.label);
    t.deepEqual(cache.users(), users);
    t.is(cache.getMeta('slicename'), tree.expected.slicename);
    t.deepEqual(cache.lastRefresh(), { at: 42, trigger: 'start', durationMs: 3.5, changed: true, summary: 's' });
    // And a refresh that finds nothing keeps them, marked stale.
    await load(cache, root);
    t.deepEqual([...cache.sliceKeys()], served);
    t.like(cache.sources()[0], { id: 'tmcc:accounts', stale: true, lastStatus: 'missing' });
    t.is(Object.values(tree.expected.GetSSHKeys_all_types)[0], cache.sliceKeys().join('\n'));
    cache.close();
  }
});

test('the tmcc directory deleted and rewritten: keys never drop to none', async (t) => {
  for (const tree of goodTrees().filter((g) => g.name === 'emulab-pnode')) {
    const root = copyTree(tree.source);
    const cache = openKeyCache(dbFile());
    await load(cache, root, false);
    const served = [...cache.sliceKeys()];
    const tmcc = path.join(root, 'var/emulab/boot/tmcc');
    const saved = fs.readFileSync(path.join(tmcc, 'accounts'));
    fs.rmSync(tmcc, { recursive: true });
    await load(cache, root, false);
    t.deepEqual([...cache.sliceKeys()], served);
    fs.mkdirSync(tmcc);
    fs.writeFileSync(path.join(tmcc, 'accounts'), '');
    await load(cache, root, false);
    t.deepEqual([...cache.sliceKeys()], served);
    fs.writeFileSync(path.join(tmcc, 'accounts'), saved.subarray(0, saved.length - 30));
    await load(cache, root, false);
    t.deepEqual([...cache.sliceKeys()], served);
    fs.writeFileSync(path.join(tmcc, 'accounts'), saved);
    await load(cache, root, false);
    t.deepEqual([...cache.sliceKeys()], served);
    t.like(cache.sources()[0], { lastStatus: 'ok', stale: false });
    cache.close();
  }
});

test('database: WAL, schema version, 0600 files', (t) => {
  const file = dbFile();
  const cache = openKeyCache(file);
  cache.applySource(source('tmcc:accounts', 'ok', [['amy', [randomEd25519('a')]]]));
  const raw = new Database(file, { readonly: true });
  t.is(raw.pragma('journal_mode', { simple: true }), 'wal');
  t.is(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  raw.close();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) t.is(fs.statSync(f).mode & 0o777, 0o600, f);
  cache.close();
  fs.chmodSync(file, 0o644);
  openKeyCache(file).close();
  t.is(fs.statSync(file).mode & 0o777, 0o600);
});

test('refresh history is capped', (t) => {
  const file = dbFile();
  const cache = openKeyCache(file);
  const insert = MAX_REFRESHES + 25;
  for (let i = 0; i < insert; i++) cache.recordRefresh({ at: i, trigger: `t${i}`, durationMs: 1, changed: i % 2 === 0, summary: '' });
  t.is(cache.lastRefresh()?.trigger, `t${insert - 1}`);
  const raw = new Database(file, { readonly: true });
  t.is((raw.prepare('SELECT count(*) AS n FROM refreshes').get() as { n: number }).n, MAX_REFRESHES);
  raw.close();
  cache.close();
});

test('a corrupt, foreign or newer database is moved aside with a log line, and a fresh one used', (t) => {
  const variants: Array<[string, (file: string) => void]> = [
    ['garbage', (f) => fs.writeFileSync(f, Buffer.alloc(8192, 0x41))],
    ['a directory', (f) => fs.mkdirSync(f)],
    ['newer schema', (f) => {
      const db = new Database(f);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
    }],
    ['foreign tables', (f) => {
      const db = new Database(f);
      db.exec('CREATE TABLE something (x)');
      db.close();
    }],
    ['damaged pages', (f) => {
      const c = openKeyCache(f);
      const keys = Array.from({ length: 400 }, (_, i) => randomEd25519(`k${i}`));
      c.applySource(source('tmcc:accounts', 'ok', [['amy', keys]]));
      c.close();
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, Buffer.alloc(4096 * 3, 0xa5), 0, 4096 * 3, 4096 * 2);
      fs.closeSync(fd);
    }],
  ];
  for (const [label, damage] of variants) {
    const file = dbFile();
    damage(file);
    const { logger, lines } = capture();
    const cache = openKeyCache(file, { logger });
    const a = randomEd25519('a');
    cache.applySource(source('tmcc:accounts', 'ok', [['amy', [a]]]));
    t.deepEqual(cache.sliceKeys(), [a], label);
    cache.close();
    const aside = fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith('cache.db.corrupt-'));
    t.true(aside.some((n) => /^cache\.db\.corrupt-\d{8}T\d{6}Z$/.test(n)), `${label}: ${aside.join(',')}`);
    t.true(lines.some((l) => l['level'] === 50 && /moved aside/.test(String(l['msg']))), label);
    t.is(fs.statSync(file).mode & 0o777, 0o600);
    // The fresh file is a good cache on the next start.
    const again = openKeyCache(file, { logger });
    t.deepEqual(again.sliceKeys(), [a], label);
    again.close();
  }
});

test('read-only open: sees the writer\'s data and later changes; an unusable file is left alone', (t) => {
  const file = dbFile();
  const writer = openKeyCache(file);
  const [a, b] = [randomEd25519('a'), randomEd25519('b')];
  writer.applySource(source('tmcc:accounts', 'ok', [['amy', [a]]]));
  const reader = openKeyCache(file, { readonly: true });
  t.deepEqual(reader.sliceKeys(), [a]);
  const v = reader.version;
  writer.applySource(source('tmcc:accounts', 'ok', [['amy', [a, b]]]));
  t.true(reader.version > v);
  t.deepEqual(reader.sliceKeys(), [a, b]);
  reader.close();
  writer.close();

  // Closed cleanly (no -wal/-shm left): still readable read-only.
  const clean = openKeyCache(file, { readonly: true });
  t.deepEqual(clean.sliceKeys(), [a, b]);
  clean.close();

  const bad = dbFile();
  fs.writeFileSync(bad, 'not a database at all, not at all, not at all');
  const { logger, lines } = capture();
  const r = openKeyCache(bad, { readonly: true, logger });
  t.deepEqual(r.sliceKeys(), []);
  t.deepEqual(r.sources(), []);
  r.close();
  t.is(fs.readFileSync(bad, 'utf8'), 'not a database at all, not at all, not at all');
  t.true(lines.some((l) => /unreadable/.test(String(l['msg']))));
});

test('file events without geni-get keep the last geni-get data', async (t) => {
  for (const tree of goodTrees().filter((g) => g.name === 'pg-vnode')) {
    const root = copyTree(tree.source);
    const cache = openKeyCache(dbFile());
    await load(cache, root, true);
    const served = [...cache.sliceKeys()];
    for (const s of await collectFileSources(nodePaths(root))) cache.applySource(s);
    t.deepEqual([...cache.sliceKeys()], served, tree.label);
    t.deepEqual(cache.sources().map((s) => s.id), ['tmcc:accounts', 'geni-get:geni_user']);
    cache.close();
  }
});

test('each connection gets a small page cache and no mmap (not better-sqlite3s 16 MB default)', (t) => {
  const db = new Database(path.join(tempDir(), 'c.db'));
  t.is(db.pragma('cache_size', { simple: true }), -16000);
  tuneConnection(db);
  t.is(db.pragma('cache_size', { simple: true }), -PAGE_CACHE_KIB);
  t.is(db.pragma('mmap_size', { simple: true }), 0);
  t.true(PAGE_CACHE_KIB <= 2048);
  db.close();
});
