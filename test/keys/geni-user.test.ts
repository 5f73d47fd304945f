import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseGeniUser, readGeniUser, GENI_USER_SOURCE_ID } from '../../src/keys/geni-user.js';
import { geniGetError, runGeniGet } from '../../src/sources/geniget.js';
import { openKeyCache } from '../../src/store/cache.js';
import { nodePaths } from '../../src/paths.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from './keygen.js';

const where = { source: 'geni-get geni_user' };
const ED = randomEd25519('carol@uni');

test('the contract shape parses; login is the URN name', (t) => {
  const out = JSON.stringify([
    { urn: 'urn:publicid:IDN+emulab.net+user+alice', keys: [ED] },
    { urn: 'urn:publicid:IDN+utah.cloudlab.us:sub+user+bob-2', keys: [] },
    { urn: 'urn:publicid:IDN+emulab.net+user+alice', keys: [`  ${ED}\r\n`] },
  ]);
  const r = parseGeniUser(out, where);
  t.is(r.id, GENI_USER_SOURCE_ID);
  t.is(r.status, 'ok');
  t.deepEqual(r.problems, []);
  t.deepEqual(r.users.map((u) => [u.login, u.urn, u.keys.map((k) => k.text)]), [
    ['alice', 'urn:publicid:IDN+emulab.net+user+alice', [ED, ED]],
    ['bob-2', 'urn:publicid:IDN+utah.cloudlab.us:sub+user+bob-2', []],
  ]);
});

test('bad entries and bad keys are reported and skipped', (t) => {
  const out = JSON.stringify([
    'just a string',
    null,
    { keys: [ED] },
    { urn: 'urn:publicid:IDN+emulab.net+slice+alice', keys: [ED] },
    { urn: 'urn:publicid:IDN+emulab.net+user+a%2Fb', keys: [ED] },
    { urn: 'urn:publicid:IDN+emulab.net+user+dave' },
    { urn: 'urn:publicid:IDN+emulab.net+user+erin', keys: 'ssh-rsa AAAA' },
    { urn: 'urn:publicid:IDN+emulab.net+user+carol', keys: [ED, 42, 'ssh-rsa nope', `${ED}\nssh-rsa AAAA injected`] },
  ]);
  const r = parseGeniUser(out, where);
  t.is(r.status, 'ok');
  t.deepEqual(r.users.map((u) => [u.login, u.keys.length]), [['carol', 1]]);
  t.is(r.problems.length, 10);
  t.regex(r.problems[3]!.message, /not a user URN/);
  t.regex(r.problems[4]!.message, /not a valid login/);
  t.true(r.problems.every((p) => p.where.source.startsWith('geni-get geni_user user #')));
  t.regex(r.problems[9]!.where.source, /user #8 \(carol\) key #4/);
});

test('not JSON, not an array, too big, nothing usable', (t) => {
  t.is(parseGeniUser('{"urn": 1', where).status, 'invalid');
  t.is(parseGeniUser('{"urn": "x"}', where).status, 'invalid');
  t.is(parseGeniUser(' ', where).status, 'missing');
  t.is(parseGeniUser('[' + ' '.repeat(5 * 1024 * 1024) + ']', where).status, 'invalid');
  t.is(parseGeniUser('[1, 2]', where).status, 'invalid');
  t.is(parseGeniUser('[]', where).status, 'ok');
});

test('readGeniUser runs the node\'s geni-get; absent means no source, failing means missing', async (t) => {
  const tree = goodTrees().find((g) => fs.existsSync(path.join(g.source, 'usr/bin/geni-get')))!;
  const root = copyTree(tree.source);
  const paths = nodePaths(root);
  const r = await readGeniUser(paths, { timeoutMs: 5000 });
  t.is(r?.status, 'ok');
  t.true((r?.users.length ?? 0) > 0);

  t.is(await readGeniUser(nodePaths(tempDir()), { timeoutMs: 5000 }), undefined);

  const failing = tempDir();
  fs.mkdirSync(path.join(failing, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(failing, 'usr/bin/geni-get'), '#!/bin/sh\necho boss unreachable >&2\nexit 1\n', { mode: 0o755 });
  const f = await readGeniUser(nodePaths(failing), { timeoutMs: 5000 });
  t.is(f?.status, 'missing');
  t.is(f!.reason, 'geni-get geni_user exited with status 1');
});

/** A node root whose geni-get is the given shell script body. */
function nodeWithGeniGet(body: string): string {
  const root = tempDir();
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/bin/geni-get'), `#!/bin/sh\n${body}`, { mode: 0o755 });
  return root;
}

/** Poll (with a deadline) until process `pid` no longer exists. */
async function gone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('geni-get\'s own error format: "geni-get: <cmd>: <message>" on stderr, exit 1, becomes the reason', async (t) => {
  t.is(geniGetError('geni-get: geni_user: unknown request\n', 'geni_user'), 'unknown request');
  t.is(geniGetError('geni-get: slice_urn: unknown request\r\n', 'slice_urn'), 'unknown request');
  t.is(geniGetError('geni-get: client_id: no answer\n', 'geni_user'), undefined, 'another command');
  t.is(geniGetError('Traceback (most recent call last):\n', 'geni_user'), undefined);
  t.is(geniGetError('geni-get: geni_user: caf\u00e9 \u001b[31m\n', 'geni_user'), 'caf? ?[31m');
  const root = nodeWithGeniGet('echo "geni-get: $1: unknown request" >&2\nexit 1\n');
  const r = await readGeniUser(nodePaths(root), { timeoutMs: 5000 });
  t.like(r, { status: 'missing', reason: 'geni-get geni_user: unknown request', users: [] });
  t.deepEqual(await runGeniGet(nodePaths(root), 'slice_urn', { timeoutMs: 5000 }), { ok: false, reason: 'geni-get slice_urn: unknown request' });
});

test('geni-get output with CRLF endings: the value has no CR, the JSON parses', async (t) => {
  const key = randomEd25519('crlf@x');
  const json = JSON.stringify([{ urn: 'urn:publicid:IDN+emulab.net+user+carol', keys: [key] }]);
  const root = nodeWithGeniGet(`case "$1" in\n  slice_urn) printf 'urn:publicid:IDN+emulab.net:p+slice+s\\r\\n' ;;\n  geni_user) printf '%s\\r\\n' '${json}' ;;\nesac\n`);
  const urn = await runGeniGet(nodePaths(root), 'slice_urn', { timeoutMs: 5000 });
  t.like(urn, { ok: true, output: 'urn:publicid:IDN+emulab.net:p+slice+s' });
  const r = await readGeniUser(nodePaths(root), { timeoutMs: 5000 });
  t.is(r?.status, 'ok');
  t.deepEqual(r?.users.map((u) => [u.login, u.keys.map((k) => k.text)]), [['carol', [key]]]);
});

test('a hung geni-get whose child keeps the pipes open is killed, with its child, at sliceid\'s deadline', async (t) => {
  const pidFile = path.join(tempDir(), 'child.pid');
  const root = nodeWithGeniGet(`sleep 300 &\necho $! > ${pidFile}\nexec sleep 300\n`);
  const started = Date.now();
  const r = await readGeniUser(nodePaths(root), { timeoutMs: 400 });
  const took = Date.now() - started;
  t.like(r, { status: 'missing', reason: 'geni-get geni_user gave no answer within 400 ms and was killed' });
  // The deadline, not the children, decides (generous margin for a loaded machine; the hang is 300 s).
  t.true(took < 400 + 5000, `took ${took} ms`);
  t.true(await gone(Number(fs.readFileSync(pidFile, 'utf8')), 5000), 'the background child was killed too');
});

test('a geni-get that answers and exits but leaves a child holding its stdout does not wait for that child', async (t) => {
  const pidFile = path.join(tempDir(), 'child.pid');
  const key = randomEd25519('dave@home');
  const json = JSON.stringify([{ urn: 'urn:publicid:IDN+emulab.net+user+dave', keys: [key] }]);
  const root = nodeWithGeniGet(`echo '${json}'\nsleep 300 &\necho $! > ${pidFile}\nexit 0\n`);
  const started = Date.now();
  const r = await readGeniUser(nodePaths(root), { timeoutMs: 20000 });
  t.true(Date.now() - started < 10000, 'well before the 20 s deadline');
  t.is(r?.status, 'ok');
  t.deepEqual(r?.users.map((u) => u.keys.map((k) => k.text)), [[key]]);
  t.true(await gone(Number(fs.readFileSync(pidFile, 'utf8')), 5000));
});

test('invalid or cut-off geni_user JSON is no data: the last good keys stay, the source is stale with the reason', async (t) => {
  const key = randomEd25519('carol@uni');
  const good = JSON.stringify([{ urn: 'urn:publicid:IDN+emulab.net+user+carol', keys: [key] }]);
  const cache = openKeyCache(path.join(tempDir(), 'cache.db'));
  t.like(cache.applySource(parseGeniUser(good, where)), { applied: true });
  const bad = [
    good.slice(0, good.length - 3), // cut off (geni-get stops at 16 KiB without a word)
    good.slice(0, good.indexOf('"keys"')), // cut at an entry boundary
    good.replace('carol@uni', 'carol\\uni'), // a backslash geni-get did not escape
    '',
  ];
  for (const out of bad) {
    const r = parseGeniUser(out, where);
    t.not(r.status, 'ok', JSON.stringify(out.slice(-20)));
    t.like(cache.applySource(r), { applied: false });
    t.deepEqual([...cache.userKeys('carol')], [key]);
    t.like(cache.sources().find((s) => s.id === GENI_USER_SOURCE_ID), { stale: true });
  }
  t.regex(cache.sources()[0]!.reason!, /serving its last good data/);
  cache.close();
});
