import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseAccounts, parseFields, readAccounts, ACCOUNTS_SOURCE_ID } from '../../src/keys/accounts.js';
import { brokenTrees, copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';
import { randomEd25519 } from './keygen.js';

const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul alice@laptop';
const ADD_ALICE =
  'ADDUSER LOGIN=alice PSWD=* UID=10001 GID=6005 ROOT=1 NAME="Alice Smith" HOMEDIR=/users/alice GLIST="6006,6007" SERIAL=1478123456 EMAIL="alice@example.edu" SHELL=bash';

test('the contract example parses: group, user fields, key', (t) => {
  const r = parseAccounts(`ADDGROUP NAME=myproj GID=6005\n${ADD_ALICE}\nPUBKEY LOGIN=alice KEY="${ED}"\n`, 'accounts');
  t.is(r.id, ACCOUNTS_SOURCE_ID);
  t.is(r.status, 'ok');
  t.deepEqual(r.problems, []);
  t.deepEqual(r.groups, [{ name: 'myproj', gid: 6005 }]);
  t.is(r.users.length, 1);
  const u = r.users[0]!;
  t.like(u, { login: 'alice', uid: 10001, gid: 6005, name: 'Alice Smith', homedir: '/users/alice', email: 'alice@example.edu' });
  t.deepEqual(u.keys.map((k) => k.text), [ED]);
  t.true(r.pubkeyLogins.has('alice'));
});

test('quoted fields may hold spaces and quotes; empty quoted fields are fine', (t) => {
  const f = parseFields('LOGIN=bob PSWD=* UID=1 NAME="Bob "the builder" Jones" HOMEDIR=/u/bob GLIST="" EMAIL="" SHELL=tcsh');
  t.true(f instanceof Map);
  const m = f as Map<string, string>;
  t.is(m.get('NAME'), 'Bob "the builder" Jones');
  t.is(m.get('GLIST'), '');
  t.is(m.get('SHELL'), 'tcsh');
  t.regex(parseFields('LOGIN=a LOGIN=b') as string, /twice/);
  t.regex(parseFields('LOGIN=a junk') as string, /column 9/);
  t.regex(parseFields('NAME="unterminated HOMEDIR=/x') as string, /column/);
});

test('greedy PUBKEY grammar: the key text may contain quotes', (t) => {
  const key = `${ED.replace(' alice@laptop', '')} Bob "the builder" Jones`;
  const r = parseAccounts(`PUBKEY LOGIN=bob KEY="${key}"\n`, 'accounts');
  t.is(r.status, 'ok');
  t.is(r.users[0]!.keys[0]!.text, key);
  t.is(r.users[0]!.keys[0]!.comment, 'Bob "the builder" Jones');
});

test('keys keep file order, users keep first-appearance order', (t) => {
  const k = [randomEd25519('1'), randomEd25519('2'), randomEd25519('3'), randomEd25519('4')];
  const text = [
    'ADDUSER LOGIN=zed UID=2 HOMEDIR=/users/zed',
    ADD_ALICE,
    `PUBKEY LOGIN=alice KEY="${k[0]}"`,
    `PUBKEY LOGIN=zed KEY="${k[1]}"`,
    `PUBKEY LOGIN=alice KEY="${k[2]}"`,
    `PUBKEY LOGIN=nobody KEY="${k[3]}"`,
    '',
  ].join('\n');
  const r = parseAccounts(text, 'accounts');
  t.deepEqual(r.users.map((u) => u.login), ['zed', 'alice', 'nobody']);
  t.deepEqual(r.users.find((u) => u.login === 'alice')!.keys.map((x) => x.text), [k[0], k[2]]);
  t.is(r.users.find((u) => u.login === 'nobody')!.uid, undefined);
});

test('SFSKEY is ignored; unknown and malformed lines are reported with their line and skipped', (t) => {
  const text = [
    ADD_ALICE,
    'SFSKEY KEY="alice@example.edu:AAAA"',
    'FROBNICATE everything',
    'ADDUSER PSWD=* UID=3',
    'ADDUSER LOGIN=bad$login UID=3',
    'ADDUSER LOGIN=carl UID=notanumber',
    'ADDUSER LOGIN=dan UID=5 HOMEDIR=relative/path',
    'ADDGROUP NAME=g',
    ADD_ALICE,
    `PUBKEY LOGIN=alice KEY="${ED}"`,
    'PUBKEY LOGIN=alice',
    `PUBKEY LOGIN=al ice KEY="${ED}"`,
    '',
  ].join('\n');
  const r = parseAccounts(text, '/x/accounts');
  t.is(r.status, 'ok');
  t.deepEqual(
    r.problems.map((p) => p.where),
    [3, 4, 5, 6, 7, 8, 9, 11, 12].map((line) => ({ source: '/x/accounts', line })),
  );
  t.regex(r.problems[0]!.message, /unknown accounts line "FROBNICATE"/);
  t.regex(r.problems[6]!.message, /appears twice/);
  t.deepEqual(r.users.map((u) => u.login), ['alice']);
  t.is(r.users[0]!.keys.length, 1);
});

test('status: missing when absent or empty, partial when cut or garbled, invalid when nothing is usable', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'accounts');
  t.is(readAccounts(file).status, 'missing');
  t.regex(readAccounts(file).reason!, /does not exist/);
  fs.writeFileSync(file, '');
  t.is(readAccounts(file).status, 'missing');
  t.regex(readAccounts(file).reason!, /empty/);

  // tmcc always ends its last line: without the newline the write was cut, even when what is
  // left still parses (an ADDUSER cut before HOMEDIR, a key cut at a comment).
  fs.writeFileSync(file, `${ADD_ALICE}\nPUBKEY LOGIN=alice KEY="${ED}"`);
  t.is(readAccounts(file).status, 'partial');
  t.is(readAccounts(file).users[0]!.keys.length, 1);
  fs.writeFileSync(file, `${ADD_ALICE}\nPUBKEY LOGIN=alice KEY="${ED}"\n`);
  t.is(readAccounts(file).status, 'ok');
  fs.writeFileSync(file, 'ADDUSER LOGIN=alice PSWD=* UID=10001 GID=60');
  t.is(readAccounts(file).status, 'partial');
  // Cut inside the last line.
  fs.writeFileSync(file, `${ADD_ALICE}\nPUBKEY LOGIN=alice KEY="${ED}"\nPUBKEY LOGIN=alice KEY="ssh-rsa AAAAB3Nza`);
  const cut = readAccounts(file);
  t.is(cut.status, 'partial');
  t.regex(cut.reason!, /cut short/);
  t.is(cut.users[0]!.keys.length, 1);
  t.deepEqual(cut.problems.map((p) => p.where.line), [3]);

  fs.writeFileSync(file, Buffer.concat([Buffer.from(`${ADD_ALICE}\nPUBKEY LOGIN=alice KEY="${ED}"\n`), Buffer.alloc(100)]));
  const nul = readAccounts(file);
  t.is(nul.status, 'partial');
  t.is(nul.users[0]!.keys.length, 1);

  fs.writeFileSync(file, Buffer.concat([Buffer.from(`${ADD_ALICE}\n`), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from(`PUBKEY LOGIN=alice KEY="${ED}"\n`)]));
  const utf = readAccounts(file);
  t.is(utf.status, 'partial');
  t.deepEqual(utf.problems.map((p) => [p.where.line, p.message]), [[2, 'line is not valid UTF-8; skipped']]);
  t.is(utf.users[0]!.keys.length, 1);

  fs.writeFileSync(file, 'garbage\nmore garbage\n');
  t.is(readAccounts(file).status, 'invalid');

  fs.rmSync(file);
  fs.mkdirSync(file);
  t.is(readAccounts(file).status, 'invalid');
});

test('broken/garbage-keys: only the good key, every bad line reported, nothing smuggled', (t) => {
  for (const tree of brokenTrees('garbage-keys')) {
    const file = path.join(copyTree(tree.source), 'var/emulab/boot/tmcc/accounts');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const r = readAccounts(file);
    t.is(r.status, 'ok', tree.label);
    const keys = r.users.flatMap((u) => u.keys);
    t.is(keys.length, 1, tree.label);
    t.regex(keys[0]!.text, /^ssh-ed25519 \S+ (alice|ada)@laptop$/);
    // Every line but the ADDUSER and the good PUBKEY is reported, with file and line.
    t.is(r.problems.length, lines.length - 2, tree.label);
    t.deepEqual(
      r.problems.map((p) => p.where),
      lines.map((_, i) => ({ source: file, line: i + 1 })).slice(2),
    );
    t.false(keys.some((k) => k.text.includes('injected')));
  }
});

test('broken/truncated-accounts: complete lines used, the cut line reported, partial', (t) => {
  for (const tree of brokenTrees('truncated-accounts')) {
    const file = path.join(copyTree(tree.source), 'var/emulab/boot/tmcc/accounts');
    const r = readAccounts(file);
    t.is(r.status, 'partial', tree.label);
    t.is(r.users.length, 1);
    t.is(r.users[0]!.keys.length, 1);
    t.is(r.users[0]!.keys[0]!.type, 'ssh-rsa', tree.label);
    t.deepEqual(r.problems.map((p) => p.where), [{ source: file, line: 3 }]);
  }
});

test('every fixture accounts file parses without problems', (t) => {
  for (const tree of goodTrees()) {
    const boot = path.join(tree.source, 'var/emulab/boot');
    if (!fs.existsSync(boot)) continue;
    for (const dir of fs.readdirSync(boot).filter((d) => d.startsWith('tmcc'))) {
      const r = readAccounts(path.join(boot, dir, 'accounts'));
      t.is(r.status, 'ok', tree.label);
      t.deepEqual(r.problems, [], tree.label);
    }
  }
});

test('property: no accounts line ever yields more than one key', (t) => {
  const ed = randomEd25519('x');
  const piece = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.constantFrom('"', '\\n', '\n', '\r', ' ', 'PUBKEY LOGIN=a KEY="', ed, `${ed}"`, 'ssh-rsa ', '\0'),
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 8 }), (parts) => {
      const body = parts.join('').replace(/\n/g, '\\n');
      const r = parseAccounts(`PUBKEY LOGIN=alice KEY="${body}"\n`, 'accounts');
      const n = r.users.reduce((a, u) => a + u.keys.length, 0);
      return n + r.problems.length === 1 && r.users.every((u) => u.keys.every((k) => !k.text.includes('\n')));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

// ---- Emulab data as Emulab writes it (spec section 5)

test('Emulab\'s order: each PUBKEY after its own ADDUSER, SFSKEY lines ignored, crypt PSWD, a \'"\' in key text, GENI users', (t) => {
  const bobKey = `${randomEd25519().split(' ').slice(0, 2).join(' ')} Bob "the builder" Jones`;
  const carolKey = randomEd25519('carol@uni');
  const text = [
    'ADDGROUP NAME=myproj GID=6005',
    'ADDUSER LOGIN=alice PSWD=$6$Qm1x.Z9r$bl8/SbTtno8buFPEuvPsYikI9Unx5DSxd5ER7qJ5ZlCNTPGkJeewTHKzNTUalD5qhUy3J1UShBYS7rwxQnOrD1 UID=10001 GID=6005 ROOT=1 NAME="Alice Smith" HOMEDIR=/users/alice GLIST="" SERIAL=1 EMAIL="alice@example.edu" SHELL=bash',
    `PUBKEY LOGIN=alice KEY="${ED}"`,
    'SFSKEY KEY="alice@example.edu:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"',
    'ADDUSER LOGIN=bob PSWD=$1$b0Bq2LmZ$3QyF0c2d7Hh9vS1nGm8a1. UID=10002 GID=6005 ROOT=0 NAME="Bob Jones" HOMEDIR=/users/bob GLIST="" SERIAL=2 EMAIL="bob@example.edu" SHELL=tcsh',
    `PUBKEY LOGIN=bob KEY="${bobKey}"`,
    'ADDUSER LOGIN=carol PSWD=* UID=21003 GID=6005 ROOT=1 NAME="carol" HOMEDIR=/users/carol GLIST="" SERIAL=3 EMAIL="root@localhost" SHELL=bash',
    `PUBKEY LOGIN=carol KEY="${carolKey}"`,
  ].join('\n') + '\n';
  const r = parseAccounts(text, 'accounts');
  t.is(r.status, 'ok');
  t.deepEqual(r.problems, []);
  t.deepEqual(r.users.map((u) => [u.login, u.uid, u.email, u.keys.map((k) => k.text)]), [
    ['alice', 10001, 'alice@example.edu', [ED]],
    ['bob', 10002, 'bob@example.edu', [bobKey]],
    ['carol', 21003, 'root@localhost', [carolKey]],
  ]);
  t.is(r.users[1]!.keys[0]!.comment, 'Bob "the builder" Jones');
});

test('CRLF line endings: the same users and keys as LF, no problem, status ok (and a cut CRLF file is still partial)', (t) => {
  for (const tree of goodTrees()) {
    const boot = path.join(tree.source, 'var/emulab/boot');
    if (!fs.existsSync(boot)) continue;
    for (const dir of fs.readdirSync(boot).filter((d) => d.startsWith('tmcc'))) {
      const lf = fs.readFileSync(path.join(boot, dir, 'accounts'), 'utf8');
      const crlf = lf.replace(/\n/g, '\r\n');
      const a = parseAccounts(lf, 'accounts');
      const b = parseAccounts(crlf, 'accounts');
      t.is(b.status, 'ok', tree.label);
      t.deepEqual(b.problems, [], tree.label);
      t.true(b.users.length > 0, tree.label);
      t.deepEqual(b.users, a.users, tree.label);
      t.deepEqual(b.groups, a.groups, tree.label);
      t.false(b.users.some((u) => u.keys.some((k) => k.text.includes('\r'))));
      t.is(parseAccounts(crlf.slice(0, -30), 'accounts').status, 'partial', tree.label);
    }
  }
  // A CR anywhere but at the end of a line is still refused with the line.
  const r = parseAccounts(`${ADD_ALICE}\r\nPUBKEY LOGIN=alice KEY="${ED}\r"\r\n`, 'accounts');
  t.is(r.users[0]!.keys.length, 0);
  t.deepEqual(r.problems.map((p) => p.where.line), [2]);
});
