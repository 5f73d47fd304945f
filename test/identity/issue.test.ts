import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig, loadConfig, type Config } from '../../src/config.js';
import { InputError } from '../../src/errors.js';
import { parseGidChain, verifyGidChain } from '../../src/identity/gid.js';
import { refreshIdentity } from '../../src/identity/index.js';
import { gidDir } from '../../src/identity/issue.js';
import { sliceUuid, uuidV5 } from '../../src/identity/uuid.js';
import { nodePaths, type NodePaths } from '../../src/paths.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';

const DAY = 86_400_000;
const pnode = goodTrees().filter((t) => t.name === 'emulab-pnode').at(-1)!;

/** A copy of a tree whose directories the test may write into (fixtures may be read-only). */
function writableCopy(source: string): string {
  const root = copyTree(source);
  const walk = (dir: string): void => {
    fs.chmodSync(dir, fs.statSync(dir).mode | 0o700);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(root);
  return root;
}

function files(paths: NodePaths): string[] {
  const state = fs.existsSync(gidDir(paths)) ? fs.readdirSync(gidDir(paths)).map((f) => path.join(gidDir(paths), f)) : [];
  return [paths.slicename, paths.sliceGid, paths.nodeGid, ...state].filter((f) => fs.existsSync(f)).sort();
}

/** Bytes, mode and mtime of every identity and state file. */
function snapshot(paths: NodePaths): Record<string, { sha: string; mode: number; mtime: number }> {
  return Object.fromEntries(
    files(paths).map((f) => {
      const st = fs.statSync(f);
      return [path.relative(paths.root, f), { sha: crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex'), mode: st.mode & 0o7777, mtime: st.mtimeMs }];
    }),
  );
}

// One fresh run (the RSA key generation), copied for each scenario.
const primed = (async () => {
  const root = writableCopy(pnode.source);
  const paths = nodePaths(root);
  const first = await refreshIdentity(paths, defaultConfig(), { geniGet: false, now: new Date() });
  return { root, first };
})();

async function scenario() {
  const { root, first } = await primed;
  const copy = tempDir();
  fs.cpSync(root, copy, { recursive: true, preserveTimestamps: true });
  return { paths: nodePaths(copy), first };
}

test('a fresh state issues the authority and both leaves; directories 0700 and files 0600', async (t) => {
  const { paths, first } = await scenario();
  t.deepEqual([...first.issued].sort(), ['authority emulab.net', 'node', 'slice']);
  t.is(first.written.length, 3);
  t.is(fs.statSync(paths.stateDir).mode & 0o777, 0o700);
  t.is(fs.statSync(gidDir(paths)).mode & 0o777, 0o700);
  for (const f of fs.readdirSync(gidDir(paths))) t.is(fs.statSync(path.join(gidDir(paths), f)).mode & 0o777, 0o600, f);
  for (const f of [paths.slicename, paths.sliceGid, paths.nodeGid]) t.is(fs.statSync(f).mode & 0o777, 0o644);
  t.false(fs.readFileSync(paths.nodeGid, 'utf8').includes('PRIVATE KEY'));
  t.is(first.sliceUuid, sliceUuid(pnode.expected.slice.urn));
  t.is(first.nodeUuid, pnode.expected.node.uuid ?? first.nodeUuid);
  const notAfter = new Date(first.gids.slice.notAfter).getTime();
  t.is(first.nextRenewal.getTime(), Math.min(notAfter, new Date(first.gids.node.notAfter).getTime()) - 30 * DAY);
  for (const file of [paths.sliceGid, paths.nodeGid]) t.true(verifyGidChain(parseGidChain(fs.readFileSync(file, 'utf8'))).ok);
});

test('a second run changes nothing: same serials, keys, bytes and mtimes', async (t) => {
  const { paths, first } = await scenario();
  const before = snapshot(paths);
  const again = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual(again.issued, []);
  t.deepEqual(again.written, []);
  t.deepEqual(again.stateWritten, []);
  t.is(again.gids.slice.serial, first.gids.slice.serial);
  t.is(again.gids.node.serial, first.gids.node.serial);
  t.deepEqual(snapshot(paths), before);
});

test('keys and certificates made readable by others, or directories opened up, are private again at the next run', async (t) => {
  const { paths } = await scenario();
  for (const f of fs.readdirSync(gidDir(paths))) fs.chmodSync(path.join(gidDir(paths), f), 0o644);
  fs.chmodSync(gidDir(paths), 0o755);
  fs.chmodSync(paths.stateDir, 0o755);
  await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.is(fs.statSync(paths.stateDir).mode & 0o777, 0o700);
  t.is(fs.statSync(gidDir(paths)).mode & 0o777, 0o700);
  for (const f of fs.readdirSync(gidDir(paths))) t.is(fs.statSync(path.join(gidDir(paths), f)).mode & 0o777, 0o600, f);
});

test('a changed nickname re-issues the slice GID only; the node GID stays byte-identical', async (t) => {
  const { paths, first } = await scenario();
  const before = snapshot(paths);
  fs.writeFileSync(path.join(paths.bootDir, 'nickname'), 'node0.otherexp.myproj\n');
  const r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual(r.issued, ['slice']);
  t.is(r.identity.slicename, 'myproj_otherexp');
  t.is(r.identity.slice.urn, 'urn:publicid:IDN+emulab.net:myproj+slice+otherexp');
  t.not(r.gids.slice.serial, first.gids.slice.serial);
  t.is(r.sliceUuid, uuidV5('urn:publicid:IDN+emulab.net:myproj+slice+otherexp'));
  const after = snapshot(paths);
  const rel = (f: string) => path.relative(paths.root, f);
  t.deepEqual(after[rel(paths.nodeGid)], before[rel(paths.nodeGid)]);
  t.deepEqual(after[rel(path.join(gidDir(paths), 'node.key'))], before[rel(path.join(gidDir(paths), 'node.key'))]);
  t.not(after[rel(path.join(gidDir(paths), 'slice.key'))]!.sha, before[rel(path.join(gidDir(paths), 'slice.key'))]!.sha, 'a new URN gets a new key');
  t.deepEqual([...r.written].sort(), [paths.sliceGid, paths.slicename].sort());
  t.is(fs.readFileSync(paths.slicename, 'utf8'), 'myproj_otherexp');
});

test('a missing or unreadable key re-issues that GID alone, with a new key', async (t) => {
  const { paths } = await scenario();
  const before = snapshot(paths);
  fs.rmSync(path.join(gidDir(paths), 'node.key'));
  let r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual(r.issued, ['node']);
  t.deepEqual(r.written, [paths.nodeGid]);
  fs.writeFileSync(path.join(gidDir(paths), 'slice.key'), 'garbage');
  r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual(r.issued, ['slice']);
  const after = snapshot(paths);
  const k = path.relative(paths.root, path.join(gidDir(paths), 'authority-emulab.net.key'));
  t.deepEqual(after[k], before[k]);
});

test('renewal: within renewBeforeDays of expiry every GID is renewed with its key kept', async (t) => {
  const { paths, first } = await scenario();
  const keys = () => ['slice.key', 'node.key', 'authority-emulab.net.key'].map((f) => fs.readFileSync(path.join(gidDir(paths), f), 'utf8'));
  const keysBefore = keys();
  const early = await refreshIdentity(paths, defaultConfig(), { geniGet: false, now: new Date(first.nextRenewal.getTime() - 60_000) });
  t.deepEqual(early.issued, []);
  const later = new Date(first.nextRenewal.getTime() + 60_000);
  const r = await refreshIdentity(paths, defaultConfig(), { geniGet: false, now: later });
  t.deepEqual([...r.issued].sort(), ['authority emulab.net', 'node', 'slice']);
  t.deepEqual(keys(), keysBefore);
  t.true(new Date(r.gids.slice.notAfter).getTime() > new Date(first.gids.slice.notAfter).getTime());
  t.true(r.nextRenewal.getTime() > later.getTime());
  t.true(verifyGidChain(parseGidChain(fs.readFileSync(paths.sliceGid, 'utf8')), later).ok);
});

test('a re-keyed authority re-signs both leaves, which keep their keys', async (t) => {
  const { paths, first } = await scenario();
  const nodeKey = fs.readFileSync(path.join(gidDir(paths), 'node.key'), 'utf8');
  fs.rmSync(path.join(gidDir(paths), 'authority-emulab.net.key'));
  const r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual([...r.issued].sort(), ['authority emulab.net', 'node', 'slice']);
  t.is(fs.readFileSync(path.join(gidDir(paths), 'node.key'), 'utf8'), nodeKey);
  t.not(r.gids.node.serial, first.gids.node.serial);
  t.true(verifyGidChain(parseGidChain(fs.readFileSync(paths.nodeGid, 'utf8'))).ok);
});

test('node UUID: the testbed one when given (a change re-issues the node GID), else a random one kept in state', async (t) => {
  const { paths } = await scenario();
  fs.writeFileSync(path.join(paths.bootDir, 'nodeuuid'), 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\n');
  let r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.deepEqual(r.issued, ['node']);
  t.is(r.nodeUuid, 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
  fs.rmSync(path.join(paths.bootDir, 'nodeuuid'));
  r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.is(r.nodeUuidSource, 'state');
  t.regex(r.nodeUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const again = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.is(again.nodeUuid, r.nodeUuid);
  t.deepEqual(again.issued, []);
});

test('the slice UUID is RFC 4122 v5 of the slice URN in the URL namespace (as Python computes it)', (t) => {
  const urn = 'urn:publicid:IDN+emulab.net:myproj+slice+myexp';
  const py = execFileSync('python3', ['-c', 'import sys,uuid;print(uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]))', urn], { encoding: 'utf8' }).trim();
  t.is(sliceUuid(urn), py);
});

test('refused input writes and changes nothing', async (t) => {
  const { paths } = await scenario();
  const before = snapshot(paths);
  fs.writeFileSync(path.join(paths.bootDir, 'nickname'), 'node0.bad exp.myproj\n');
  const err = await t.throwsAsync(refreshIdentity(paths, defaultConfig(), { geniGet: false }), { instanceOf: InputError });
  t.regex(err!.message, /nickname:1: "node0\.bad exp\.myproj" has experiment "bad exp"/);
  t.deepEqual(snapshot(paths), before);
});

/** An operator CA made by openssl; `key` reuses an existing key file (no key generation). */
function makeOperatorCa(dir: string, opts: { ec?: boolean; urn?: string; key?: string } = {}): { cert: string; key: string } {
  const key = path.join(dir, 'ca.key');
  const cert = path.join(dir, 'ca.pem');
  if (opts.key) fs.copyFileSync(opts.key, key);
  const keyArgs = opts.key
    ? ['-key', key]
    : ['-newkey', opts.ec ? 'ec' : 'rsa:2048', ...(opts.ec ? ['-pkeyopt', 'ec_paramgen_curve:P-256'] : []), '-nodes', '-keyout', key];
  execFileSync('openssl', [
    'req', '-x509', ...keyArgs, '-out', cert, '-days', '3650', '-subj', '/CN=emulab\\\\.net',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', `subjectAltName=URI:${opts.urn ?? 'urn:publicid:IDN+emulab.net+authority+sa'},URI:urn:uuid:11111111-2222-4333-8444-555555555555`,
  ], { stdio: 'ignore' });
  return { cert, key };
}

// One RSA operator CA for the file.
const operatorCa = (() => {
  let made: { cert: string; key: string } | undefined;
  return () => (made ??= makeOperatorCa(tempDir()));
})();

function operatorConfig(paths: NodePaths, body: string): Config {
  const dir = path.join(paths.root, 'etc', 'sliceid');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'sliceid.toml'), body);
  return loadConfig(paths).config;
}

test('an operator authority from the config signs the leaves; a slice of another authority gets a local issuer', async (t) => {
  const { paths } = await scenario();
  const dir = path.join(paths.root, 'etc', 'sliceid');
  fs.mkdirSync(dir, { recursive: true });
  const ca = makeOperatorCa(dir, { key: operatorCa().key });
  const config = operatorConfig(paths, '[authority]\ncert = "/etc/sliceid/ca.pem"\nkey = "/etc/sliceid/ca.key"\n');
  t.is(config.authority!.cert, ca.cert);
  const r = await refreshIdentity(paths, config, { geniGet: false });
  t.deepEqual([...r.issued].sort(), ['node', 'slice']);
  t.is(r.gids.slice.issuerKind, 'operator');
  const chain = fs.readFileSync(paths.nodeGid, 'utf8');
  t.true(chain.endsWith(fs.readFileSync(ca.cert, 'utf8')));
  const leaf = path.join(paths.root, 'leaf.pem');
  fs.writeFileSync(leaf, parseGidChain(chain)[0]!.pem);
  t.regex(execFileSync('openssl', ['verify', '-CAfile', ca.cert, leaf], { encoding: 'utf8' }), /OK/);
  t.deepEqual((await refreshIdentity(paths, config, { geniGet: false })).issued, []);

  const foreign = operatorConfig(paths, '[authority]\ncert = "ca.pem"\nkey = "ca.key"\n[facts]\nslice_urn = "urn:publicid:IDN+ch.geni.net:gp+slice+gs"\n');
  const r2 = await refreshIdentity(paths, foreign, { geniGet: false });
  t.is(r2.gids.slice.issuerKind, 'local');
  t.is(r2.gids.slice.issuer, 'ch\\.geni\\.net');
  t.is(r2.gids.node.issuerKind, 'operator');
  t.true(verifyGidChain(parseGidChain(fs.readFileSync(paths.sliceGid, 'utf8'))).ok);
});

test('a bad operator authority is refused naming its file, and nothing is written', async (t) => {
  const { paths } = await scenario();
  const before = snapshot(paths);
  const dir = tempDir();
  const ec = makeOperatorCa(dir, { ec: true });
  const cases: Array<[Config['authority'], RegExp]> = [
    [{ cert: path.join(dir, 'missing.pem'), key: ec.key }, /missing\.pem: .* cannot be read/],
    [{ cert: ec.cert, key: ec.key }, /ca\.key: .* holds a ec key/],
    [{ cert: ec.key, key: ec.key }, /is not a PEM certificate/],
  ];
  const rsa = operatorCa();
  fs.writeFileSync(path.join(dir, 'other.key'), crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }));
  cases.push([{ cert: rsa.cert, key: path.join(dir, 'other.key') }, /does not match the public key/]);
  const nodeDir = tempDir();
  const notAuth = makeOperatorCa(nodeDir, { urn: 'urn:publicid:IDN+emulab.net+node+boss', key: rsa.key });
  cases.push([notAuth, /is not an authority GID/]);
  for (const [authority, pattern] of cases) {
    const config = { ...defaultConfig(), authority };
    const err = await t.throwsAsync(refreshIdentity(paths, config, { geniGet: false }), { instanceOf: InputError });
    t.regex(err!.message, pattern);
  }
  t.deepEqual(snapshot(paths), before);
});
