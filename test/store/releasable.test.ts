import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseKeyText } from '../../src/keys/sshkey.js';
import { ReleasableKeyCache } from '../../src/store/releasable.js';
import type { SourceResult } from '../../src/keys/types.js';
import { tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from '../keys/keygen.js';

function dbFile(): string {
  const dir = path.join(tempDir(), 'state');
  fs.mkdirSync(dir, { mode: 0o700 });
  return path.join(dir, 'cache.db');
}

function accounts(keys: string[]): SourceResult {
  return { id: 'accounts', origin: '/origin/accounts', status: 'ok', users: [{ login: 'gina', keys: keys.map((k) => parseKeyText(k, { source: 'accounts' })) }], problems: [] };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the connection is open only while used: a call opens it, the end of the turn closes it; data and version survive', async (t) => {
  const cache = new ReleasableKeyCache(dbFile());
  t.teardown(() => cache.close());
  t.false(cache.isOpen, 'closed once made');
  const key = randomEd25519('gina@utah');
  cache.applySource(accounts([key]));
  t.true(cache.isOpen);
  const version = cache.version;
  await turn();
  t.false(cache.isOpen, 'closed after the turn that used it');
  t.is(cache.version, version, 'closing does not change the version (the API keeps its memoized answers)');
  t.deepEqual([...cache.sliceKeys()], [key], 'the data is read again from the file');
  t.is(cache.version, version, 'nor does opening again');
  await turn();
  const other = randomEd25519('gina@laptop');
  cache.applySource(accounts([key, other]));
  t.true(cache.version > version, 'a change after reopening still moves the version up');
  t.deepEqual([...cache.sliceKeys()], [key, other]);
});

test('hold keeps one connection across turns until release; close is final', async (t) => {
  const cache = new ReleasableKeyCache(dbFile());
  const opensBefore = cache.opens;
  cache.hold();
  cache.setMeta('slicename', 'labpg3_sl1');
  await turn();
  await turn();
  t.true(cache.isOpen, 'held across turns');
  t.is(cache.getMeta('slicename'), 'labpg3_sl1');
  t.is(cache.opens, opensBefore + 1, 'one opening for the whole held stretch');
  cache.release();
  t.false(cache.isOpen);
  t.is(cache.getMeta('slicename'), 'labpg3_sl1');
  cache.close();
  t.false(cache.isOpen);
  t.throws(() => cache.sliceKeys(), { message: /is closed/ });
});

test('a corrupt database is moved aside when the cache is made, as openKeyCache does', (t) => {
  const file = dbFile();
  fs.writeFileSync(file, 'not a database, not at all'.repeat(200));
  const cache = new ReleasableKeyCache(file);
  t.teardown(() => cache.close());
  t.deepEqual([...cache.sliceKeys()], []);
  t.true(fs.readdirSync(path.dirname(file)).some((n) => n.startsWith('cache.db.') && n !== 'cache.db-wal' && n !== 'cache.db-shm'), fs.readdirSync(path.dirname(file)).join(' '));
});
