import test from 'ava';
import { AsyncLocalStorage } from 'node:async_hooks';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/commands/once.js';
import { parseGidChain, verifyGidChain } from '../../src/identity/gid.js';
import { nodePaths } from '../../src/paths.js';
import { brokenTrees, copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';

// Run main() in-process and capture what it prints; AsyncLocalStorage keeps concurrent tests apart.
const captured = new AsyncLocalStorage<{ out: string; err: string }>();
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const store = captured.getStore();
  if (!store) return (realOut as (...a: unknown[]) => boolean)(chunk, ...rest);
  store.out += String(chunk);
  return true;
}) as typeof process.stdout.write;
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const store = captured.getStore();
  if (!store) return (realErr as (...a: unknown[]) => boolean)(chunk, ...rest);
  store.err += String(chunk);
  return true;
}) as typeof process.stderr.write;

async function once(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const store = { out: '', err: '' };
  const code = await captured.run(store, () => main(args));
  return { code, ...store };
}

const openssl = (args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function identityFiles(root: string): string[] {
  const p = nodePaths(root);
  return [p.slicename, p.sliceGid, p.nodeGid];
}

function stats(root: string): Record<string, number> {
  const p = nodePaths(root);
  const gidDir = path.join(p.stateDir, 'gid');
  const all = [...identityFiles(root), ...fs.readdirSync(gidDir).map((f) => path.join(gidDir, f))];
  return Object.fromEntries(all.map((f) => [f, fs.statSync(f).mtimeMs]));
}

for (const tree of goodTrees()) {
  test(`${tree.label}: once writes files that decode to expected.json, verify with openssl, and a second run changes nothing`, async (t) => {
    const root = copyTree(tree.source);
    const paths = nodePaths(root);
    const first = await once(['--root', root, '--json']);
    t.is(first.err, '');
    t.is(first.code, 0);
    const result = JSON.parse(first.out) as { issued: string[]; written: string[]; gids: { slice: { serial: string }; node: { serial: string } } };
    t.true(result.issued.includes('slice') && result.issued.includes('node'));

    const e = tree.expected;
    t.is(fs.readFileSync(paths.slicename, 'utf8'), e.slicename);
    const slice = parseGidChain(fs.readFileSync(paths.sliceGid, 'utf8'));
    const node = parseGidChain(fs.readFileSync(paths.nodeGid, 'utf8'));
    t.is(slice[0]!.urn, e.slice.urn);
    t.is(slice[0]!.hrn, e.slice.hrn);
    t.is(slice[0]!.cn, e.slice.hrn.length <= 64 ? e.slice.hrn : slice[0]!.uuid);
    t.is(node[0]!.urn, e.node.urn);
    t.is(node[0]!.hrn, e.node.hrn);
    if (e.node.uuid) t.is(node[0]!.uuid, e.node.uuid);
    for (const chain of [slice, node]) {
      t.is(chain.length, 2);
      const check = verifyGidChain(chain);
      t.deepEqual([...check.problems, ...check.warnings], []);
    }

    // openssl: subject, extension order and flags, and each chain verifies against its own
    // authority (a leaf is signed by an authority of its own top level, spec section 3).
    const dir = tempDir();
    for (const [name, chain, hrn] of [['slice', slice, e.slice.hrn], ['node', node, e.node.hrn]] as const) {
      const leaf = path.join(dir, `${name}.pem`);
      const authority = path.join(dir, `${name}-authority.pem`);
      fs.writeFileSync(leaf, chain[0]!.pem);
      fs.writeFileSync(authority, chain[1]!.pem);
      t.regex(openssl(['x509', '-in', authority, '-noout', '-text']), /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
      const text = openssl(['x509', '-in', leaf, '-noout', '-text', '-nameopt', 'sep_comma_plus,sname,utf8']);
      t.true(text.includes(`Subject: CN=${hrn}\n`), `${name} subject`);
      t.regex(text, /X509v3 extensions:\n\s+X509v3 Basic Constraints: critical\n\s+CA:FALSE\n\s+X509v3 Subject Alternative Name: \n\s+URI:urn:publicid:IDN\+\S+, URI:urn:uuid:[0-9a-f-]{36}\n\s+Signature Algorithm: sha256WithRSAEncryption/);
      t.regex(openssl(['verify', '-CAfile', authority, leaf]), /: OK\n/);
    }

    // Second run: nothing issued, nothing written, same serials, same mtimes.
    const before = stats(root);
    const second = await once(['--root', root, '--json']);
    t.is(second.code, 0);
    const again = JSON.parse(second.out) as typeof result;
    t.deepEqual(again.issued, []);
    t.deepEqual(again.written, []);
    t.is(again.gids.slice.serial, result.gids.slice.serial);
    t.is(again.gids.node.serial, result.gids.node.serial);
    t.deepEqual(stats(root), before);
  });
}

for (const name of ['bad-hostname', 'bad-nickname']) {
  for (const tree of brokenTrees(name)) {
    test(`${tree.label}: refused with one clear message naming the source, the value and the rule; nothing written`, async (t) => {
      const root = copyTree(tree.source);
      const r = await once(['--root', root]);
      t.is(r.code, 1);
      t.is(r.out, '');
      t.is(r.err.split('\n').length, 2, r.err);
      const source = name === 'bad-hostname' ? 'etc/hostname' : 'var/emulab/boot/nickname';
      t.true(r.err.startsWith(`sliceid: ${path.join(root, source)}:1: "`), r.err);
      const value = fs.readFileSync(path.join(root, source), 'utf8').trim();
      t.true(r.err.includes(JSON.stringify(value)), r.err);
      t.regex(r.err, name === 'bad-hostname' ? /names no slice.*Set the identity in the config/ : /outside the nickname grammar/);
      for (const f of identityFiles(root)) t.false(fs.existsSync(f), f);
      t.false(fs.existsSync(nodePaths(root).stateDir));
    });
  }
}

test('the human summary names the slice, the URNs and HRNs, where each part came from and what changed', async (t) => {
  const tree = goodTrees().find((g) => g.name === 'emulab-pnode')!;
  const root = copyTree(tree.source);
  const r = await once(['--root', root]);
  t.is(r.code, 0);
  t.regex(r.out, new RegExp(`^slice name +${tree.expected.slicename}$`, 'm'));
  t.true(r.out.includes(tree.expected.slice.urn));
  t.true(r.out.includes(tree.expected.node.hrn));
  t.regex(r.out, /^slice from +\S+var\/emulab\/boot\/nickname:1$/m);
  t.regex(r.out, /^node from +\S+var\/emulab\/boot\/nodeid:1$/m);
  t.regex(r.out, /^issued +authority [a-z.]+, slice, node$/m);
  t.regex(r.out, /^files written +.*slice\.gid.*node\.gid.*slicename$/m);
  const again = await once(['--root', root]);
  t.regex(again.out, /^issued +nothing \(GIDs current\)$/m);
  t.regex(again.out, /^files written +none \(unchanged\)$/m);
});

test('--no-geni-get derives the slice from the nickname instead', async (t) => {
  const tree = goodTrees().find((g) => g.name === 'pg-vnode')!;
  const root = copyTree(tree.source);
  const r = await once(['--root', root, '--no-geni-get', '--json']);
  t.is(r.code, 0);
  const [, eid, pid] = fs.readFileSync(path.join(root, 'var/emulab/boot/nickname'), 'utf8').trim().split('.');
  // SFA's rule: the project (login base) lowercased and alphanumeric only, the experiment's case kept.
  t.is(fs.readFileSync(nodePaths(root).slicename, 'utf8'), `${pid!.toLowerCase().replace(/[^a-z0-9]/g, '')}_${eid!.replace(/[^A-Za-z0-9_]/g, '')}`);
  t.not(fs.readFileSync(nodePaths(root).slicename, 'utf8'), tree.expected.slicename);
});

test('a config file sets the identity on a node whose host name names no slice', async (t) => {
  const tree = brokenTrees('bad-hostname')[0]!;
  const root = copyTree(tree.source);
  const config = path.join(tempDir(), 'sliceid.toml');
  fs.writeFileSync(config, '[facts]\nslice_urn = "urn:publicid:IDN+emulab.net:myproj+slice+myexp"\ndomain = "emulab.net"\nnodeid = "pc5"\n');
  const r = await once(['--root', root, '--config', config, '--json']);
  t.is(r.err, '');
  t.is(r.code, 0);
  t.is(fs.readFileSync(nodePaths(root).slicename, 'utf8'), 'myproj_myexp');
  const out = JSON.parse(r.out) as { configFile: string; identity: { origins: { slice: { source: string; line: number } } } };
  t.is(out.configFile, config);
  t.deepEqual(out.identity.origins.slice, { source: config, line: 2 });
});

test('usage and config errors', async (t) => {
  const bad = await once(['--bogus']);
  t.is(bad.code, 2);
  t.regex(bad.err, /usage: sliceid once/);
  const help = await once(['--help']);
  t.is(help.code, 0);
  t.regex(help.out, /usage: sliceid once/);
  const root = copyTree(goodTrees()[0]!.source);
  const config = path.join(tempDir(), 'c.toml');
  fs.writeFileSync(config, '[api]\nprot = 1\n');
  const r = await once(['--root', root, '--config', config]);
  t.is(r.code, 1);
  t.regex(r.err, /c\.toml:2: "api\.prot" is not a known setting in \[api\]/);
  t.false(fs.existsSync(nodePaths(root).slicename));
});

test('once on a node whose state was made on another: one warning on stderr, a state row, the testbed node UUID', async (t) => {
  const tree = goodTrees().find((g) => g.label === 'own/emulab-pnode')!;
  const root = copyTree(tree.source);
  t.is((await once(['--root', root, '--no-geni-get'])).code, 0);
  const boot = path.join(root, 'var/emulab/boot');
  fs.writeFileSync(path.join(boot, 'nodeid'), 'pc999\n');
  fs.writeFileSync(path.join(boot, 'nodeuuid'), '5a0f4c8e-2b1d-4e6f-9a3b-7c8d9e0f1a2b\n');
  const r = await once(['--root', root, '--no-geni-get']);
  t.is(r.code, 0);
  t.regex(r.err, /^sliceid: warning: state of pc77 on pc999: issued anew; the old state is in \S+\/var\/lib\/sliceid\/set-aside\/\d{8}T\d{6}Z\n$/);
  t.regex(r.out, /^state +state of pc77 on pc999: issued anew; the old state is in \S+$/m);
  t.regex(r.out, /^issued +authority emulab\.net, slice, node$/m);
  t.regex(r.out, /^node UUID +5a0f4c8e-2b1d-4e6f-9a3b-7c8d9e0f1a2b$/m);
  const again = await once(['--root', root, '--no-geni-get']);
  t.is(again.err, '');
  t.notRegex(again.out, /^state /m);
});
