import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { accountsFileFor, collectFileSources, collectKeySources, keyWatchPaths, tmccDirFor, userKeyFiles } from '../../src/keys/collect.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from './keygen.js';

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

test('every fixture: sources in priority order, every expected key found', async (t) => {
  for (const tree of goodTrees()) {
    const paths = nodePaths(copyTree(tree.source));
    const sources = await collectKeySources(paths, { geniGet: true, timeoutMs: 5000 });
    t.is(sources[0]!.id, 'tmcc:accounts', tree.label);
    const ids = sources.map((s) => s.id);
    t.deepEqual(ids, [...ids].sort((a, b) => rank(a) - rank(b)), tree.label);
    const found = new Set(sources.flatMap((s) => s.users.flatMap((u) => u.keys.map((k) => k.text))));
    for (const keys of Object.values(tree.expected.users)) for (const k of keys) t.true(found.has(k), `${tree.label}: ${k.slice(0, 40)}`);
    for (const s of sources) t.deepEqual(s.problems, [], `${tree.label} ${s.id}`);
  }
});

function rank(id: string): number {
  return id.startsWith('tmcc') ? 0 : id.startsWith('authorized_keys') ? 1 : 2;
}

test('without geni-get (file events) only the file sources are read', async (t) => {
  for (const tree of goodTrees().filter((g) => fs.existsSync(path.join(g.source, 'usr/bin/geni-get')))) {
    const paths = nodePaths(copyTree(tree.source));
    const sources = await collectKeySources(paths, { geniGet: false, timeoutMs: 5000 });
    t.false(sources.some((s) => s.id.startsWith('geni-get')));
    t.deepEqual((await collectFileSources(paths)).map((s) => s.id), sources.map((s) => s.id));
  }
});

test('tmcc dir: tmcc.<vnodeId>, then tmcc.<vmname>, tmcc.<nodeid>, else tmcc/', (t) => {
  const root = tempDir();
  const paths = nodePaths(root);
  t.is(tmccDirFor(paths), path.join(paths.bootDir, 'tmcc'));
  t.is(tmccDirFor(paths, 'pcvm1-1'), path.join(paths.bootDir, 'tmcc'));
  write(root, 'var/emulab/boot/nodeid', 'pcvm9-9\n');
  fs.mkdirSync(path.join(paths.bootDir, 'tmcc.pcvm9-9'));
  t.is(tmccDirFor(paths), path.join(paths.bootDir, 'tmcc.pcvm9-9'));
  write(root, 'var/emulab/boot/vmname', 'pcvm5-1\n');
  fs.mkdirSync(path.join(paths.bootDir, 'tmcc.pcvm5-1'));
  t.is(tmccDirFor(paths), path.join(paths.bootDir, 'tmcc.pcvm5-1'));
  fs.mkdirSync(path.join(paths.bootDir, 'tmcc.pcvm1-1'));
  t.is(tmccDirFor(paths, 'pcvm1-1'), path.join(paths.bootDir, 'tmcc.pcvm1-1'));
  // Names that would leave the boot dir are never used.
  write(root, 'var/emulab/boot/vmname', '../../../etc\n');
  t.is(tmccDirFor(paths, '../x'), path.join(paths.bootDir, 'tmcc.pcvm9-9'));
  t.is(accountsFileFor(paths, 'pcvm1-1'), path.join(paths.bootDir, 'tmcc.pcvm1-1', 'accounts'));
});

test('authorized_keys only for users without PUBKEY lines, one source each, in accounts order', async (t) => {
  const root = tempDir();
  const [k1, k2, k3] = [randomEd25519('a'), randomEd25519('b'), randomEd25519('c')];
  write(
    root,
    'var/emulab/boot/tmcc/accounts',
    [
      'ADDUSER LOGIN=amy UID=1 HOMEDIR=/users/amy',
      'ADDUSER LOGIN=bo UID=2 HOMEDIR=/users/bo',
      'ADDUSER LOGIN=cat UID=3 HOMEDIR=/home/cat',
      'ADDUSER LOGIN=dee UID=4',
      'ADDUSER LOGIN=eve UID=5 HOMEDIR=/users/eve',
      `PUBKEY LOGIN=amy KEY="${k1}"`,
      'PUBKEY LOGIN=eve KEY="ssh-rsa broken"',
      '',
    ].join('\n'),
  );
  write(root, 'users/amy/.ssh/authorized_keys', `${k3}\n`);
  write(root, 'users/bo/.ssh/authorized_keys', `# DO NOT EDIT!\n${k2}\n`);
  write(root, 'users/eve/.ssh/authorized_keys', `${k3}\n`);
  const paths = nodePaths(root);
  const sources = await collectFileSources(paths);
  t.deepEqual(
    sources.map((s) => [s.id, s.status, s.priority, s.origin]),
    [
      ['tmcc:accounts', 'ok', 0, path.join(paths.bootDir, 'tmcc', 'accounts')],
      ['authorized_keys:bo', 'ok', 2, path.join(root, 'users/bo/.ssh/authorized_keys')],
      ['authorized_keys:cat', 'missing', 3, path.join(root, 'home/cat/.ssh/authorized_keys')],
    ],
  );
  t.deepEqual(sources[1]!.users.map((u) => [u.login, u.uid, u.keys.map((k) => k.text)]), [['bo', 2, [k2]]]);
});

test('a HOMEDIR never leaves the root', async (t) => {
  const root = tempDir();
  write(root, 'var/emulab/boot/tmcc/accounts', 'ADDUSER LOGIN=x UID=1 HOMEDIR=/../../../../etc\n');
  const sources = await collectFileSources(nodePaths(root));
  t.is(sources[1]!.origin, path.join(root, 'etc/.ssh/authorized_keys'));
});

test('keyWatchPaths: boot dir, accounts file; userKeyFiles: authorized_keys in use or awaited', (t) => {
  const root = tempDir();
  const paths = nodePaths(root);
  t.deepEqual(keyWatchPaths(paths, 'pcvm1-2'), [
    paths.bootDir,
    path.join(paths.bootDir, 'tmcc', 'accounts'),
    path.join(paths.bootDir, 'tmcc.pcvm1-2', 'accounts'),
  ]);
  const watch = userKeyFiles(paths, [
    { login: 'amy', homedir: '/users/amy', keys: ['k'], sources: ['tmcc:accounts'] },
    { login: 'bo', homedir: '/users/bo', keys: ['k'], sources: ['tmcc:accounts', 'authorized_keys:bo'] },
    { login: 'cat', homedir: '/home/cat', keys: [], sources: ['tmcc:accounts'] },
    { login: 'dee', keys: [], sources: ['tmcc:accounts'] },
  ]);
  t.deepEqual(watch, [path.join(root, 'users/bo/.ssh/authorized_keys'), path.join(root, 'home/cat/.ssh/authorized_keys')]);
});
