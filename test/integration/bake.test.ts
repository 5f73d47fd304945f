// Baking an image, as a maintainer does it, with the real CLI and daemon: sliceid tried on one node
// (pc7), its state carried to another (pc999) as a snapshot would carry it, and `sliceid clean`.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseGidChain, verifyGidChain } from '../../src/identity/gid.js';
import { nodePaths } from '../../src/paths.js';
import { copyTree, goodTrees, tempDir } from '../helpers/fixtures.js';
import { getSshKeys, runCli, startDaemon, type LogLine } from '../helpers/daemon.js';

const nfs = goodTrees().find((t) => t.label === 'own/emulab-nfs')!;

function nodeTree(nodeid: string, hostname: string, machineId: string): string {
  const root = copyTree(nfs.source);
  fs.writeFileSync(path.join(root, 'var/emulab/boot/nodeid'), `${nodeid}\n`);
  fs.writeFileSync(path.join(root, 'etc/hostname'), `${hostname}\n`);
  fs.writeFileSync(path.join(root, 'etc/machine-id'), `${machineId}\n`);
  return root;
}

const nodeLeaf = (root: string) => parseGidChain(fs.readFileSync(nodePaths(root).nodeGid, 'utf8'));
const isRefresh = (trigger: string) => (l: LogLine) => l.msg === 'refresh' && l['trigger'] === trigger;
const warnings = (logs: LogLine[]) => logs.filter((l) => (l.level ?? 0) >= 40 && /issued anew/.test(String(l.msg)));

function opensslVerify(chainFile: string): string {
  const chain = parseGidChain(fs.readFileSync(chainFile, 'utf8'));
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'ca.pem'), chain.at(-1)!.pem);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), chain[0]!.pem);
  return execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
}

test.serial('an image tried on pc7 and started on pc999: the daemon sets pc7 state aside and issues anew; clean leaves nothing behind', async (t) => {
  // The maintainer tries sliceid on pc7: once, then the daemon twice (a restart re-issues nothing).
  const pc7 = nodeTree('pc7', 'srv.web2.cslab.emulab.net', '0123456789abcdef0123456789abcdef');
  const first = await runCli(['once', '--root', pc7, '--no-geni-get']);
  t.is(first.code, 0, first.stderr);
  t.is(first.stderr, '');
  for (let i = 0; i < 2; i++) {
    const d = await startDaemon(pc7);
    const refresh = await d.waitForLog(isRefresh('start'), 5000, 0);
    t.deepEqual(refresh['issued'], [], 'nothing re-issued on the same node');
    t.deepEqual(warnings(d.logs), []);
    await d.stop();
  }

  // The snapshot carries pc7's state directory to pc999 (another node id, host name, machine-id).
  const pc999 = nodeTree('pc999', 'pc999.emulab.net', 'fedcba9876543210fedcba9876543210');
  fs.cpSync(nodePaths(pc7).stateDir, nodePaths(pc999).stateDir, { recursive: true });
  const d = await startDaemon(pc999);
  try {
    const start = await d.waitForLog(isRefresh('start'), 5000, 0);
    t.deepEqual([...(start['issued'] as string[])].sort(), ['authority emulab.net', 'node', 'slice']);
    const found = warnings(d.logs);
    t.is(found.length, 1, 'one warning');
    t.is(found[0]!.msg, 'state of pc7 on pc999: issued anew');
    t.is(found[0]!.level, 40);
    t.not(nodeLeaf(pc999)[0]!.uuid, nodeLeaf(pc7)[0]!.uuid, 'a node UUID of its own');
    t.not(nodeLeaf(pc999)[1]!.pem, nodeLeaf(pc7)[1]!.pem, 'an authority of its own');
    for (const file of [nodePaths(pc999).nodeGid, nodePaths(pc999).sliceGid]) {
      t.true(verifyGidChain(parseGidChain(fs.readFileSync(file, 'utf8'))).ok);
      t.regex(opensslVerify(file), /leaf\.pem: OK/);
    }
    t.deepEqual(await getSshKeys(d.port), nfs.expected.GetSSHKeys, 'the key cache came along and serves');

    // status says so until the next clean refresh.
    const status = await runCli(['status', '--root', pc999]);
    t.regex(status.stdout, /^state {7}state of pc7 on pc999: issued anew at \S+; the old state is in \S+\/var\/lib\/sliceid\/set-aside\/\d{8}T\d{6}Z \(its 3 private keys removed\)$/m);
    const before = d.logs.length;
    t.is((await runCli(['refresh', '--root', pc999])).code, 0);
    await d.waitForLog(isRefresh('SIGHUP'), 10000, before);
    const after = JSON.parse((await runCli(['status', '--root', pc999, '--json'])).stdout) as { stateNotice?: string };
    t.is(after.stateNotice, undefined);

    // clean refuses while the daemon runs.
    const refused = await runCli(['clean', '--root', pc999]);
    t.is(refused.code, 1);
    t.regex(refused.stderr, /the daemon is running \(pid \d+/);
    t.true(fs.existsSync(nodePaths(pc999).nodeGid));
  } finally {
    await d.stop();
  }

  // Stopped: clean, and nothing node-specific is left; a start then works from nothing, without a warning.
  const p = nodePaths(pc999);
  const cleaned = await runCli(['clean', '--root', pc999]);
  t.is(cleaned.code, 0, cleaned.stderr);
  t.regex(cleaned.stdout, /^removed .*\/var\/lib\/sliceid\/gid$/m);
  t.deepEqual(fs.readdirSync(p.stateDir), []);
  for (const f of [p.slicename, p.sliceGid, p.nodeGid, p.pidFile, p.faultsFile, p.socket]) t.false(fs.existsSync(f), f);
  t.is((await runCli(['clean', '--root', pc999, '--dry-run'])).stdout, 'nothing node-specific to remove\n');
  const fresh = await startDaemon(pc999);
  try {
    const start = await fresh.waitForLog(isRefresh('start'), 5000, 0);
    t.deepEqual([...(start['issued'] as string[])].sort(), ['authority emulab.net', 'node', 'slice']);
    t.deepEqual(warnings(fresh.logs), []);
    t.deepEqual(await getSshKeys(fresh.port), nfs.expected.GetSSHKeys);
  } finally {
    await fresh.stop();
  }
});
