// Which logins get keys (issue 25, point 3): src/keys/logins.ts.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { admitUsers, loginPolicy, systemLogins, topAuthority } from '../../src/keys/logins.js';
import type { SourceResult } from '../../src/keys/types.js';
import { tempDir } from '../helpers/fixtures.js';

const identity = { domain: 'Emulab.net', slice: { urn: 'urn:publicid:IDN+ch.geni.net:proj+slice+x' } };
const geni = (urns: string[]): SourceResult => ({
  id: 'geni-get:geni_user', origin: 'geni-get geni_user', status: 'ok', problems: [],
  users: urns.map((urn) => ({ login: urn.split('+').at(-1)!, urn, keys: [] })),
});

test('top-level authority of a URN, lowercased', (t) => {
  t.is(topAuthority('urn:publicid:IDN+Emulab.net:proj+user+a'), 'emulab.net');
  t.is(topAuthority('urn:publicid:IDN+ch.geni.net+user+a'), 'ch.geni.net');
  t.is(topAuthority('nonsense'), undefined);
});

test('system logins: uid below 1000 in <root>/etc/passwd, and root always', (t) => {
  const root = tempDir();
  t.deepEqual([...systemLogins(path.join(root, 'etc/passwd'))], [['root', 0]]);
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nbin:x:2:2::/:/x\nalice:x:10001:10001::/users/alice:/bin/sh\ngarbage\n');
  t.deepEqual([...systemLogins(path.join(root, 'etc/passwd'))].sort(), [['bin', 2], ['root', 0], ['toor', 0]]);
});

test('geni_user: the slice\'s and the node\'s testbed are admitted, others refused by URN; no identity, none', (t) => {
  const policy = loginPolicy(nodePaths(tempDir()), identity);
  const { result, refused } = admitUsers(
    geni(['urn:publicid:IDN+ch.geni.net+user+amy', 'urn:publicid:IDN+emulab.net+user+bo', 'urn:publicid:IDN+evil.org+user+cy', 'urn:publicid:IDN+emulab.net+user+root']),
    policy,
  );
  t.deepEqual(result.users.map((u) => u.login), ['amy', 'bo']);
  t.is(refused.length, 2);
  t.regex(refused[0]!, /urn:publicid:IDN\+evil\.org\+user\+cy refused: its authority evil\.org is neither the slice's ch\.geni\.net nor the node's emulab\.net/);
  t.regex(refused[1]!, /urn:publicid:IDN\+emulab\.net\+user\+root refused: login root is a system account/);
  const none = admitUsers(geni(['urn:publicid:IDN+emulab.net+user+bo']), loginPolicy(nodePaths(tempDir()), undefined));
  t.deepEqual(none.result.users, []);
  t.regex(none.refused[0]!, /no identity yet/);
});

test('accounts: only ADDUSER logins, never a UID below 1000', (t) => {
  const policy = loginPolicy(nodePaths(tempDir()), identity);
  const accounts: SourceResult = {
    id: 'tmcc:accounts', origin: 'accounts', status: 'ok', problems: [],
    users: [{ login: 'alice', uid: 10001, keys: [] }, { login: 'stray', keys: [] }, { login: 'sys', uid: 0, keys: [] }],
  };
  const { result, refused } = admitUsers(accounts, policy);
  t.deepEqual(result.users.map((u) => u.login), ['alice']);
  t.regex(refused.join('\n'), /login stray has PUBKEY lines but no ADDUSER line creates it/);
  t.regex(refused.join('\n'), /login sys has UID 0/);
  // Nothing refused: the very same result.
  t.is(admitUsers({ ...accounts, users: [accounts.users[0]!] }, policy).refused.length, 0);
});
