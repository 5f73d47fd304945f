import test from 'ava';
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { main as once } from '../../src/commands/once.js';
import { main as showGid } from '../../src/commands/show-gid.js';
import { splitPem } from '../../src/identity/gid.js';
import { nodePaths } from '../../src/paths.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';

const captured = new AsyncLocalStorage<{ out: string; err: string }>();
for (const [stream, key] of [[process.stdout, 'out'], [process.stderr, 'err']] as const) {
  const real = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const store = captured.getStore();
    if (!store) return real(chunk, ...rest);
    store[key] += String(chunk);
    return true;
  }) as typeof stream.write;
}

async function run(main: (args: string[]) => Promise<number>, args: string[]) {
  const store = { out: '', err: '' };
  const code = await captured.run(store, () => main(args));
  return { code, ...store };
}

const tree = goodTrees().find((g) => g.name === 'emulab-pnode')!;
const node = (async () => {
  const root = copyTree(tree.source);
  const r = await run(once, ['--root', root]);
  if (r.code !== 0) throw new Error(r.err);
  return nodePaths(root);
})();

test('decodes each certificate of a chain and says it verifies', async (t) => {
  const paths = await node;
  const r = await run(showGid, [paths.nodeGid]);
  t.is(r.code, 0);
  t.regex(r.out, /: 2 certificates\n/);
  t.regex(r.out, /\[1\] node\n/);
  t.true(r.out.includes(`  URN        ${tree.expected.node.urn}\n`));
  t.true(r.out.includes(`  HRN        ${tree.expected.node.hrn}\n`));
  if (tree.expected.node.uuid) t.true(r.out.includes(`  UUID       ${tree.expected.node.uuid}\n`));
  t.regex(r.out, /  issuer     CN=emulab\\\.net\n/);
  t.regex(r.out, /  serial     [0-9a-f]+\n/);
  t.regex(r.out, /  valid      \S+ to \S+\n/);
  t.regex(r.out, /  CA         FALSE\n/);
  t.regex(r.out, /\[2\] authority \(CA\)\n[\s\S]*  CA         TRUE\n/);
  t.regex(r.out, /  extensions basicConstraints \(critical\), subjectAltName\n/);
  t.regex(r.out, /chain verifies \(ends at a self-signed authority\)\n$/);
});

test('--json gives one object per certificate and the verdict', async (t) => {
  const paths = await node;
  const r = await run(showGid, [paths.sliceGid, '--json']);
  t.is(r.code, 0);
  const out = JSON.parse(r.out) as { verified: boolean; problems: string[]; certificates: Array<{ urn: string; hrn: string; uuid: string; ca: boolean; type: string; serial: string; notAfter: string; issuerCn: string }> };
  t.true(out.verified);
  t.deepEqual(out.problems, []);
  t.is(out.certificates.length, 2);
  t.like(out.certificates[0], { urn: tree.expected.slice.urn, hrn: tree.expected.slice.hrn, ca: false, type: 'slice', issuerCn: 'emulab\\.net' });
  t.like(out.certificates[1], { type: 'authority', ca: true });
  t.false(r.out.includes('BEGIN CERTIFICATE'));
});

test('a chain that does not verify is reported with its problems and exit 1', async (t) => {
  const paths = await node;
  const [leaf, auth] = splitPem(fs.readFileSync(paths.nodeGid, 'utf8'));
  const file = path.join(tempDir(), 'reversed.gid');
  fs.writeFileSync(file, auth! + leaf!);
  const r = await run(showGid, [file]);
  t.is(r.code, 1);
  t.regex(r.out, /chain does NOT verify:\n(  - .+\n)+$/);
  t.regex(r.out, /is not CA:TRUE|was not signed by/);
});

test('usage: no file is exit 2, an unreadable file exit 1 with its name', async (t) => {
  const none = await run(showGid, []);
  t.is(none.code, 2);
  t.regex(none.err, /FILE is missing\nusage: sliceid show-gid/);
  const missing = await run(showGid, ['/nonexistent/node.gid']);
  t.is(missing.code, 1);
  t.regex(missing.err, /\/nonexistent\/node\.gid/);
  const empty = path.join(tempDir(), 'empty.gid');
  fs.writeFileSync(empty, 'not a certificate\n');
  const r = await run(showGid, [empty]);
  t.is(r.code, 1);
  t.regex(r.out, /0 certificates[\s\S]*no certificate found/);
});
