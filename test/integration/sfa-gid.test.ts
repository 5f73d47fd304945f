// The GIDs and /etc/slicename as an SFA tool sees them: test/identity/sfa_gid.py reads a GID file
// the way SFA's gid.py/certificate.py do (on pyOpenSSL, SFA's library) and verifies the chain by
// SFA's verify_chain rules; openssl reads and verifies the same files.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startDaemon } from '../helpers/daemon.js';
import { python, type PyAnswer } from '../api/helpers.js';
import { copyTree, goodTrees, projectDir, tempDir } from '../helpers/fixtures.js';
import { nodePaths } from '../../src/paths.js';

interface SfaView {
  urn: string | null;
  hrn: string | null;
  uuid: string | null;
  type: string | null;
  cn: string | null;
  pl_slicename: string | null;
  verified: boolean;
  error: string | null;
}

const script = path.join(projectDir, 'test', 'identity', 'sfa_gid.py');

/** A python3 that has pyOpenSSL (Debian's python3-openssl is for /usr/bin/python3). */
const pythonWithOpenssl = ((): string => {
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(py, ['-c', 'import OpenSSL, cryptography'], { stdio: 'ignore' });
      return py;
    } catch {
      // try the next one
    }
  }
  return 'python3';
})();

function sfaRead(pairs: Array<[string, string]>): SfaView[] {
  const out = execFileSync(pythonWithOpenssl, [script, ...pairs.flat()], { encoding: 'utf8' });
  return JSON.parse(out) as SfaView[];
}

const openssl = (args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The last certificate of a PEM chain file, written to its own file. */
function rootOf(file: string): string {
  const blocks = fs.readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
  const out = path.join(tempDir(), 'root.pem');
  fs.writeFileSync(out, blocks.at(-1)!);
  return out;
}

test('pyOpenSSL is there for the SFA-style reader', (t) => {
  t.notThrows(() => execFileSync(pythonWithOpenssl, ['-c', 'import OpenSSL'], { stdio: 'ignore' }), 'install python3-openssl (test/ensure-tools.sh does)');
});

for (const tree of goodTrees()) {
  test(`${tree.label}: an SFA reader gets the URNs and HRNs from both GIDs, verifies both chains, and derives /etc/slicename`, async (t) => {
    const root = copyTree(tree.source);
    const r = await runCli(['once', '--root', root]);
    t.is(r.code, 0, r.stderr);
    const p = nodePaths(root);
    const [slice, node] = sfaRead([
      [p.sliceGid, p.sliceGid],
      [p.nodeGid, p.nodeGid],
    ]);
    t.like(slice, { urn: tree.expected.slice.urn, hrn: tree.expected.slice.hrn, type: 'slice', verified: true, error: null });
    t.like(node, { urn: tree.expected.node.urn, hrn: tree.expected.node.hrn, type: 'node', verified: true, error: null });
    if (tree.expected.node.uuid) t.is(node!.uuid, tree.expected.node.uuid);
    // SFA's hrn_to_pl_slicename of the GID's HRN is exactly what /etc/slicename holds.
    t.is(slice!.pl_slicename, tree.expected.slicename);
    t.is(fs.readFileSync(p.slicename, 'utf8'), slice!.pl_slicename!);
    // openssl: each leaf verifies against the authority of its own chain.
    for (const file of [p.sliceGid, p.nodeGid]) t.regex(openssl(['verify', '-CAfile', rootOf(file), file]), /: OK\n/);
  });
}

test('a slice of another top level than the node is not verified by the node\'s authority (the HRN rule holds)', async (t) => {
  const tree = goodTrees().find((g) => g.name === 'pg-vnode')!;
  const root = copyTree(tree.source);
  t.is((await runCli(['once', '--root', root])).code, 0);
  const p = nodePaths(root);
  const [wrong] = sfaRead([[p.sliceGid, p.nodeGid]]);
  t.false(wrong!.verified);
  t.regex(wrong!.error!, /signed by no trusted certificate|not an authority/);
  // A chain made of the slice leaf and the node's authority: signed by it? no; SFA refuses it.
  const pem = fs.readFileSync(p.sliceGid, 'utf8').split('-----END CERTIFICATE-----\n')[0] + '-----END CERTIFICATE-----\n';
  const mixed = path.join(tempDir(), 'mixed.gid');
  fs.writeFileSync(mixed, pem + fs.readFileSync(rootOf(p.nodeGid), 'utf8'));
  const [m] = sfaRead([[mixed, mixed]]);
  t.false(m!.verified);
  t.regex(m!.error!, /not signed by its parent/);
});

test('an HRN over 64 characters: CN is the UUID, every reader still gets the URN and HRN and verifies', async (t) => {
  const tree = goodTrees().find((g) => g.name === 'emulab-pnode')!;
  const root = copyTree(tree.source);
  const project = 'a-project-name-as-long-as-emulab-lets-it-be-48ch';
  t.is(project.length, 48);
  const urn = `urn:publicid:IDN+emulab.net:${project}+slice+Exp-name-19-chars`;
  const config = path.join(tempDir(), 'sliceid.toml');
  fs.writeFileSync(config, `[facts]\nslice_urn = "${urn}"\n`);
  const r = await runCli(['once', '--root', root, '--config', config]);
  t.is(r.code, 0, r.stderr);
  const p = nodePaths(root);
  const [slice] = sfaRead([[p.sliceGid, p.sliceGid]]);
  const hrn = `emulab\\.net.${project}.Exp-name-19-chars`;
  t.true(hrn.length > 64);
  t.like(slice, { urn, hrn, type: 'slice', verified: true, error: null });
  t.is(slice!.cn, slice!.uuid, 'CN = the GID UUID');
  t.is(fs.readFileSync(p.slicename, 'utf8'), 'aprojectnameaslongasemulabletsitbe48ch_Expname19chars');
  t.is(slice!.pl_slicename, fs.readFileSync(p.slicename, 'utf8'));
  // openssl reads it (CN within ub-common-name) and verifies it.
  const subject = openssl(['x509', '-in', p.sliceGid, '-noout', '-subject', '-nameopt', 'sep_comma_plus,sname,utf8']);
  t.is(subject, `subject=CN=${slice!.uuid}\n`);
  t.regex(openssl(['verify', '-CAfile', rootOf(p.sliceGid), p.sliceGid]), /: OK\n/);
  // sliceid's own reader: no warning about the CN, and a second run re-issues nothing.
  const shown = await runCli(['show-gid', p.sliceGid, '--json']);
  t.is(shown.code, 0, shown.stdout + shown.stderr);
  const json = JSON.parse(shown.stdout) as { verified: boolean; warnings: string[]; certificates: Array<{ cn: string; hrn: string }> };
  t.like(json, { verified: true, warnings: [] });
  t.is(json.certificates[0]!.hrn, hrn);
  const before = fs.readFileSync(p.sliceGid, 'utf8');
  const again = await runCli(['once', '--root', root, '--config', config, '--json']);
  t.is(again.code, 0);
  t.deepEqual((JSON.parse(again.stdout) as { issued: string[] }).issued, []);
  t.is(fs.readFileSync(p.sliceGid, 'utf8'), before);
});

test.serial('Python xmlrpc.client (TCP, and raw HTTP/1.0 on the socket): the slice the API names is the one SFA derives from /etc/slice.gid', async (t) => {
  for (const tree of goodTrees().filter((g) => g.name === 'pg-vnode' || g.name === 'emulab-pnode')) {
    const root = copyTree(tree.source);
    const d = await startDaemon(root);
    try {
      const p = nodePaths(root);
      const [slice] = sfaRead([[p.sliceGid, p.sliceGid]]);
      const calls: Array<[string, unknown[]]> = [['GetSSHKeys', []], ['GetXIDs', []], ['GetRecord', []]];
      const answers = (await python([
        { transport: 'tcp', url: `http://localhost:${d.port}/`, calls },
        { transport: 'unix-http10', socket: d.socket!, calls },
      ])) as PyAnswer[][];
      for (const [keys, xids, record] of answers) {
        t.deepEqual(Object.keys(keys!.ok as object), [slice!.pl_slicename], tree.label);
        t.deepEqual(Object.keys(xids!.ok as object), [slice!.pl_slicename], tree.label);
        t.is((record!.ok as { name: string }).name, slice!.pl_slicename!, tree.label);
      }
      t.is(slice!.pl_slicename, tree.expected.slicename);
    } finally {
      await d.stop();
    }
  }
});
