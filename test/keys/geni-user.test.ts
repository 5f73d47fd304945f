import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseGeniUser, readGeniUser, GENI_USER_SOURCE_ID } from '../../src/keys/geni-user.js';
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
  t.regex(f!.reason!, /failed/);
});
