import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig, loadConfig } from '../../src/config.js';
import { parseGidChain, verifyGidChain } from '../../src/identity/gid.js';
import { refreshIdentity } from '../../src/identity/index.js';
import { gidDir } from '../../src/identity/issue.js';
import {
  adoptState,
  markDifferences,
  nodeMarks,
  readNodeRecord,
  setAsideNotice,
  SET_ASIDE_DIR,
  type NodeMarks,
} from '../../src/identity/node-record.js';
import { nodePaths, type NodePaths } from '../../src/paths.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';

// emulab-nfs gives no node UUID, so the node UUID is one sliceid makes and keeps in its state.
const nfs = goodTrees().find((t) => t.label === 'own/emulab-nfs')!;
const MACHINE_A = '0123456789abcdef0123456789abcdef';
const MACHINE_B = 'fedcba9876543210fedcba9876543210';

interface NodeSpec {
  nodeid: string;
  hostname: string;
  machineId?: string;
}

/** A copy of the emulab-nfs tree made into node `nodeid` with that host name and machine-id. */
function nodeTree(spec: NodeSpec): NodePaths {
  const root = copyTree(nfs.source);
  fs.writeFileSync(path.join(root, 'var/emulab/boot/nodeid'), `${spec.nodeid}\n`);
  fs.writeFileSync(path.join(root, 'etc/hostname'), `${spec.hostname}\n`);
  if (spec.machineId !== undefined) fs.writeFileSync(path.join(root, 'etc/machine-id'), `${spec.machineId}\n`);
  return nodePaths(root);
}

const PC7: NodeSpec = { nodeid: 'pc7', hostname: 'srv.web2.cslab.emulab.net', machineId: MACHINE_A };
const PC999: NodeSpec = { nodeid: 'pc999', hostname: 'pc999.emulab.net', machineId: MACHINE_B };

const start = (paths: NodePaths) => refreshIdentity(paths, defaultConfig(), { geniGet: false, start: true });

// pc7's state, made once (three RSA keys), copied for each scenario.
const primed = (async () => {
  const paths = nodeTree(PC7);
  const first = await start(paths);
  fs.writeFileSync(paths.database, 'the key cache stands in here');
  return { paths, first };
})();

/** Node `spec` with pc7's state directory copied in, as an image carries it. */
async function cloneOf(spec: NodeSpec): Promise<{ paths: NodePaths; pc7: NodePaths; first: Awaited<ReturnType<typeof start>> }> {
  const { paths: pc7, first } = await primed;
  const paths = nodeTree(spec);
  fs.cpSync(pc7.stateDir, paths.stateDir, { recursive: true, preserveTimestamps: true });
  return { paths, pc7, first };
}

const read = (file: string): string => fs.readFileSync(file, 'utf8');
const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Every file below `dir`, relative to it. */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

/** `openssl verify` of the leaf of a chain file against the chain's last certificate. */
function opensslVerify(chainFile: string): string {
  const chain = parseGidChain(read(chainFile));
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'ca.pem'), chain.at(-1)!.pem);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), chain[0]!.pem);
  return execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
}

test('state copied to another node (other node id, host name, machine-id) is set aside and issued anew; chains verify', async (t) => {
  const { paths, pc7, first } = await cloneOf(PC999);
  const r = await start(paths);

  t.truthy(r.setAside);
  t.is(r.setAside!.message, 'state of pc7 on pc999: issued anew');
  t.deepEqual(r.setAside!.differs, ['node', 'machine-id']);
  t.deepEqual([...r.issued].sort(), ['authority emulab.net', 'node', 'slice']);
  t.is(r.nodeUuidSource, 'state');
  t.not(r.nodeUuid, first.nodeUuid, 'a node UUID of its own');
  t.is(parseGidChain(read(paths.nodeGid))[0]!.uuid, r.nodeUuid);
  for (const key of ['node.key', 'authority-emulab.net.key', 'slice.key']) {
    t.not(sha(path.join(gidDir(paths), key)), sha(path.join(gidDir(pc7), key)), `a new ${key}`);
  }
  t.not(r.gids.slice.serial, first.gids.slice.serial, 'a new slice GID');
  t.not(parseGidChain(read(paths.nodeGid))[1]!.pem, parseGidChain(read(pc7.nodeGid))[1]!.pem, 'a new authority certificate');
  for (const file of [paths.sliceGid, paths.nodeGid]) {
    t.true(verifyGidChain(parseGidChain(read(file))).ok, file);
    t.regex(opensslVerify(file), /leaf\.pem: OK\n/);
  }

  // The old state: certificates and records set aside, no private key kept; the key cache stays.
  const aside = r.setAside!.dir;
  t.is(path.dirname(aside), path.join(paths.stateDir, SET_ASIDE_DIR));
  t.regex(path.basename(aside), /^\d{8}T\d{6}Z$/);
  t.is(fs.statSync(aside).mode & 0o777, 0o700);
  t.deepEqual(walk(aside), ['gid/authority-emulab.net.pem', 'gid/node.pem', 'gid/slice.pem', 'gid/state.json', 'node.json']);
  t.is(r.setAside!.keysRemoved, 3);
  for (const f of walk(aside)) t.false(read(path.join(aside, f)).includes('PRIVATE KEY'), f);
  t.is(read(paths.database), 'the key cache stands in here');

  // The record now names pc999 and keeps the note; status says so until the next clean refresh.
  const found = readNodeRecord(paths);
  t.true('record' in found);
  if (!('record' in found)) return;
  t.is(found.record.node, 'urn:publicid:IDN+emulab.net+node+pc999');
  t.false(JSON.stringify(found.record).includes(MACHINE_B), 'the machine-id itself is not recorded');
  t.regex(setAsideNotice(paths) ?? '', /^state of pc7 on pc999: issued anew at \S+; the old state is in \S+set-aside\/\d{8}T\d{6}Z \(its 3 private keys removed\)$/);
  const again = await start(paths);
  t.is(again.setAside, undefined);
  t.deepEqual(again.issued, []);
  t.is(again.nodeUuid, r.nodeUuid);
  t.is(setAsideNotice(paths), undefined, 'a clean refresh clears the notice');
});

test('the same tree started again keeps everything: nothing issued or written, same bytes', async (t) => {
  const { paths: pc7, first } = await primed;
  const paths = nodePaths(tempDir());
  fs.cpSync(pc7.root, paths.root, { recursive: true, preserveTimestamps: true });
  const files = [paths.slicename, paths.sliceGid, paths.nodeGid, paths.nodeRecord, ...walk(gidDir(paths)).map((f) => path.join(gidDir(paths), f))];
  const before = files.map((f) => [f, sha(f), fs.statSync(f).mtimeMs]);
  const r = await start(paths);
  t.is(r.setAside, undefined);
  t.deepEqual(r.issued, []);
  t.deepEqual(r.written, []);
  t.deepEqual(r.stateWritten, []);
  t.is(r.nodeUuid, first.nodeUuid);
  t.is(r.gids.node.serial, first.gids.node.serial);
  t.deepEqual(files.map((f) => [f, sha(f), fs.statSync(f).mtimeMs]), before);
  t.false(fs.existsSync(path.join(paths.stateDir, SET_ASIDE_DIR)));
});

test('the same node id with another machine-id is another node', async (t) => {
  const { paths, first } = await cloneOf({ ...PC7, machineId: MACHINE_B });
  const r = await start(paths);
  t.is(r.setAside?.message, 'state of pc7 on pc7 (machine-id differs): issued anew');
  t.not(r.nodeUuid, first.nodeUuid);
  t.regex(opensslVerify(paths.nodeGid), /OK/);
});

test('which marks make another node: any mark that differs, or is gained or lost', (t) => {
  const a: NodeMarks = { node: 'urn:publicid:IDN+emulab.net+node+pc7', nodeuuid: '0b8e4a3c-9f2d-11ee-8c90-0242ac120002', machineId: 'x' };
  t.deepEqual(markDifferences(a, { ...a }), []);
  t.deepEqual(markDifferences(a, { ...a, node: 'urn:publicid:IDN+emulab.net+node+pc999' }), ['node']);
  t.deepEqual(markDifferences(a, { ...a, node: 'urn:publicid:IDN+utah.emulab.net+node+pc7' }), ['node']);
  t.deepEqual(markDifferences(a, { node: a.node, machineId: 'x' }), ['nodeuuid'], 'testbed node UUID lost');
  t.deepEqual(markDifferences({ node: a.node }, { node: a.node, machineId: 'x' }), ['machine-id'], 'machine-id gained (e.g. emptied in the image, made at first boot)');
  t.deepEqual(markDifferences(a, { node: a.node, nodeuuid: a.nodeuuid! }), ['machine-id'], 'machine-id lost');
});

test('machine-id: only a set 32-hex id is a mark, and only as an app-specific hash', (t) => {
  const paths = nodeTree({ ...PC7, machineId: '' });
  const identity = { node: { urn: 'urn:publicid:IDN+emulab.net+node+pc7', hrn: 'emulab\\.net.pc7' } };
  t.deepEqual(nodeMarks(paths, identity), { node: identity.node.urn });
  fs.writeFileSync(paths.machineId, 'uninitialized\n');
  t.deepEqual(nodeMarks(paths, identity), { node: identity.node.urn });
  fs.writeFileSync(paths.machineId, `${MACHINE_A}\n`);
  const marks = nodeMarks(paths, { node: { ...identity.node, uuid: '0b8e4a3c-9f2d-11ee-8c90-0242ac120002' } });
  t.regex(marks.machineId ?? '', /^[0-9a-f]{64}$/);
  t.not(marks.machineId, MACHINE_A);
  t.is(marks.nodeuuid, '0b8e4a3c-9f2d-11ee-8c90-0242ac120002');
});

test('a missing node record is foreign (a first start after an upgrade from a version without one)', async (t) => {
  const { paths, first } = await cloneOf(PC7);
  fs.rmSync(paths.nodeRecord);
  const r = await start(paths);
  t.is(r.setAside?.message, 'state of an unknown node on pc7 (no node record): issued anew');
  t.is(r.setAside?.from, undefined);
  t.not(r.nodeUuid, first.nodeUuid);
  t.true('record' in readNodeRecord(paths));
});

test('an unreadable node record is foreign', async (t) => {
  const { paths } = await cloneOf(PC7);
  const marks = nodeMarks(paths, { node: { urn: 'urn:publicid:IDN+emulab.net+node+pc7', hrn: '' } });
  const cases: Array<[string, RegExp]> = [
    ['not json', /\(node record unreadable: not JSON\)/],
    ['{"version":2,"node":"urn:publicid:IDN+emulab.net+node+pc7","since":"x"}', /\(node record unreadable: not a version 1 record\)/],
    ['{"version":1,"node":7,"since":"x"}', /\(node record unreadable: not a version 1 record\)/],
  ];
  for (const [text, pattern] of cases) {
    const { paths: p } = await cloneOf(PC7);
    fs.writeFileSync(p.nodeRecord, text);
    const note = adoptState(p, marks, { now: new Date(), keep: [] });
    t.regex(note?.message ?? '', pattern, text);
    t.false(fs.existsSync(gidDir(p)), 'the state went aside');
  }
  t.is(adoptState(paths, marks, { now: new Date(), keep: [] }), undefined, 'the intact record of the same node is kept');
});

test('a record of another node names it only when it is a node URN', async (t) => {
  const { paths } = await cloneOf(PC999);
  const record = JSON.parse(read(paths.nodeRecord)) as Record<string, unknown>;
  fs.writeFileSync(paths.nodeRecord, JSON.stringify({ ...record, node: 'urn:publicid:IDN+emulab.net+slice+$(reboot)' }));
  const marks = nodeMarks(paths, { node: { urn: 'urn:publicid:IDN+emulab.net+node+pc999', hrn: '' } });
  t.is(adoptState(paths, marks, { now: new Date(), keep: [] })?.message, 'state of another node on pc999: issued anew');
});

test('only a start checks: a later refresh uses the state and brings the record up to date', async (t) => {
  const { paths, first } = await cloneOf(PC7);
  fs.writeFileSync(paths.machineId, `${MACHINE_B}\n`);
  const r = await refreshIdentity(paths, defaultConfig(), { geniGet: false });
  t.is(r.setAside, undefined);
  t.deepEqual(r.issued, []);
  t.is(r.nodeUuid, first.nodeUuid);
  t.deepEqual(r.stateWritten, [paths.nodeRecord]);
  t.is((await start(paths)).setAside, undefined, 'the record now names this machine');
});

test('nothing to set aside: no state, or only the key cache and earlier set-aside state', async (t) => {
  const paths = nodeTree(PC7);
  const marks = nodeMarks(paths, { node: { urn: 'urn:publicid:IDN+emulab.net+node+pc7', hrn: '' } });
  t.is(adoptState(paths, marks, { now: new Date(), keep: [] }), undefined, 'no state directory');
  fs.mkdirSync(path.join(paths.stateDir, SET_ASIDE_DIR, '20261130T000000Z'), { recursive: true });
  for (const f of ['cache.db', 'cache.db-wal', 'cache.db-shm']) fs.writeFileSync(path.join(paths.stateDir, f), f);
  t.is(adoptState(paths, marks, { now: new Date(), keep: [] }), undefined);
  t.deepEqual(fs.readdirSync(paths.stateDir).sort(), ['cache.db', 'cache.db-shm', 'cache.db-wal', SET_ASIDE_DIR]);
});

test('an operator CA and the config inside the state directory are never set aside; two starts in one second get two directories', async (t) => {
  const { paths } = await cloneOf(PC999);
  const ca = path.join(paths.stateDir, 'operator', 'ca.key');
  fs.mkdirSync(path.dirname(ca));
  fs.writeFileSync(ca, '-----BEGIN RSA PRIVATE KEY-----\n');
  const config = path.join(paths.stateDir, 'sliceid.toml');
  fs.writeFileSync(config, '');
  fs.writeFileSync(path.join(paths.stateDir, 'hooks.json'), '{}');
  fs.writeFileSync(path.join(paths.stateDir, 'stray'), 'x -----BEGIN PRIVATE KEY----- y');
  const marks = nodeMarks(paths, { node: { urn: 'urn:publicid:IDN+emulab.net+node+pc999', hrn: '' } });
  const now = new Date('2026-12-01T01:02:03.456Z');
  const note = adoptState(paths, marks, { now, keep: [ca, config] });
  t.is(note?.dir, path.join(paths.stateDir, SET_ASIDE_DIR, '20261201T010203Z'));
  t.is(note?.keysRemoved, 4, 'three gid keys and the stray PEM key');
  t.deepEqual(fs.readdirSync(paths.stateDir).sort(), ['cache.db', 'operator', SET_ASIDE_DIR, 'sliceid.toml']);
  t.is(read(ca), '-----BEGIN RSA PRIVATE KEY-----\n');
  t.deepEqual(walk(note!.dir), ['gid/authority-emulab.net.pem', 'gid/node.pem', 'gid/slice.pem', 'gid/state.json', 'hooks.json', 'node.json']);

  fs.writeFileSync(path.join(paths.stateDir, 'hooks.json'), '{}');
  const second = adoptState(paths, marks, { now, keep: [ca, config] });
  t.is(second?.dir, `${note!.dir}.2`);
  t.is(second?.message, 'state of an unknown node on pc999 (no node record): issued anew');
});

test('through the config: an operator CA under the state directory signs the clone, and stays', async (t) => {
  const { paths } = await cloneOf(PC999);
  const dir = path.join(paths.stateDir, 'operator');
  fs.mkdirSync(dir);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem'), '-days', '30',
    '-subj', '/CN=emulab\\\\.net', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'subjectAltName=URI:urn:publicid:IDN+emulab.net+authority+sa,URI:urn:uuid:11111111-2222-4333-8444-555555555555',
  ], { stdio: 'ignore' });
  const before = sha(path.join(dir, 'ca.key'));
  fs.mkdirSync(path.join(paths.root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(paths.root, 'etc/sliceid/sliceid.toml'), '[authority]\ncert = "/var/lib/sliceid/operator/ca.pem"\nkey = "/var/lib/sliceid/operator/ca.key"\n');
  const r = await refreshIdentity(paths, loadConfig(paths).config, { geniGet: false, start: true });
  t.is(r.setAside?.message, 'state of pc7 on pc999: issued anew');
  t.is(r.gids.node.issuerKind, 'operator');
  t.is(sha(path.join(dir, 'ca.key')), before);
  t.regex(opensslVerify(paths.nodeGid), /OK/);
});

test('state of another node that cannot be set aside is not used: the start fails saying so, nothing is issued', async (t) => {
  const { paths } = await cloneOf(PC999);
  fs.writeFileSync(path.join(paths.stateDir, SET_ASIDE_DIR), 'in the way');
  const before = walk(paths.stateDir).map((f) => [f, sha(path.join(paths.stateDir, f))]);
  const err = await t.throwsAsync(start(paths));
  t.is(err?.message, `${paths.stateDir}: state made for pc7 cannot be set aside (EEXIST); it is not used, nothing issued`);
  t.deepEqual(walk(paths.stateDir).map((f) => [f, sha(path.join(paths.stateDir, f))]), before);
  for (const f of [paths.slicename, paths.sliceGid, paths.nodeGid]) t.false(fs.existsSync(f), f);
});
