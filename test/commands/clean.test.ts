import test from 'ava';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { main as clean } from '../../src/commands/clean.js';
import { main as once } from '../../src/commands/once.js';
import { nodePaths, type NodePaths } from '../../src/paths.js';
import { acquireStateLock, LOCK_NAME } from '../../src/fs/lock.js';
import { copyTree, goodTrees } from '../helpers/fixtures.js';

const pnode = goodTrees().find((t) => t.label === 'own/emulab-pnode')!;

// Commands print to process.stdout/stderr: capture them (tests here run one at a time).
async function cli(main: (args: string[]) => Promise<number>, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
}

/**
 * Every path below the root (directories with a trailing /) with a hash of each file's bytes. The
 * instance lock file is not opened: closing a descriptor of it would drop this process's lock.
 */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort()) {
    const st = fs.lstatSync(path.join(root, rel));
    if (path.basename(rel) === LOCK_NAME) {
      out[rel] = `lock ${st.size} ${st.mtimeMs}`;
      continue;
    }
    out[st.isDirectory() ? `${rel}/` : rel] = st.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(path.join(root, rel))).digest('hex') : st.isSocket() ? 'socket' : '';
  }
  return out;
}

/** A pid that names no live process. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

// The pnode tree as a daemon leaves it, plus the configuration an image maintainer bakes in.
let primed: Promise<string> | undefined;
async function usedNode(): Promise<NodePaths> {
  primed ??= (async () => {
    const root = copyTree(pnode.source);
    const r = await cli(once, ['--root', root, '--no-geni-get']);
    if (r.code !== 0) throw new Error(r.err);
    return root;
  })();
  const paths = nodePaths(copyTree(await primed));
  fs.writeFileSync(paths.database, 'cache');
  fs.writeFileSync(`${paths.database}-wal`, 'wal');
  fs.writeFileSync(paths.hookRecords, '{}');
  fs.mkdirSync(path.join(paths.stateDir, 'set-aside', '20261130T000000Z'), { recursive: true });
  fs.writeFileSync(path.join(paths.stateDir, 'set-aside', '20261130T000000Z', 'node.json'), '{}');
  fs.mkdirSync(path.dirname(paths.pidFile), { recursive: true });
  fs.writeFileSync(paths.pidFile, `${deadPid()}\n`);
  fs.writeFileSync(paths.faultsFile, '{"faults":[]}\n');
  fs.mkdirSync(path.dirname(paths.socket), { recursive: true });
  fs.writeFileSync(paths.socket, '');
  fs.mkdirSync(paths.sshdKeysDir, { recursive: true });
  fs.writeFileSync(path.join(paths.sshdKeysDir, 'alice'), 'ssh-ed25519 AAAA alice\n');
  fs.writeFileSync(path.join(path.dirname(paths.nodeGid), '.node.gid.0123456789ab.tmp'), 'half');
  fs.writeFileSync(path.join(paths.root, 'etc/sliceid/sliceid.toml'), '[gid]\nvalidity_days = 1000\n');
  fs.mkdirSync(paths.hooksDir, { recursive: true });
  fs.writeFileSync(path.join(paths.hooksDir, '10-setup'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(paths.root, 'etc/other.conf'), 'not ours\n');
  return paths;
}

/** Everything node-specific in usedNode(), in the order clean lists it. */
function nodeSpecific(paths: NodePaths): string[] {
  const state = (n: string) => path.join(paths.stateDir, n);
  return [
    state('gid'), state('hooks.json'), state('node.json'), state('cache.db'), state('cache.db-wal'), state('set-aside'),
    paths.slicename, paths.sliceGid, paths.nodeGid, path.join(path.dirname(paths.nodeGid), '.node.gid.0123456789ab.tmp'),
    paths.pidFile, paths.faultsFile, paths.socket, paths.sshdKeysDir,
  ];
}

test.serial('--dry-run lists everything node-specific and removes nothing', async (t) => {
  const paths = await usedNode();
  const before = tree(paths.root);
  const r = await cli(clean, ['--root', paths.root, '--dry-run']);
  t.is(r.code, 0, r.err);
  t.is(r.err, '');
  t.is(r.out, nodeSpecific(paths).map((p) => `would remove ${p}\n`).join(''));
  t.deepEqual(tree(paths.root), before);
  const json = await cli(clean, ['--root', paths.root, '--dry-run', '--json']);
  t.deepEqual(JSON.parse(json.out), { dryRun: true, wouldRemove: nodeSpecific(paths) });
  t.deepEqual(tree(paths.root), before);
});

test.serial('clean leaves no node-specific file behind, keeps the configuration, and a following start works from nothing', async (t) => {
  const paths = await usedNode();
  const before = tree(paths.root);
  const r = await cli(clean, ['--root', paths.root]);
  t.is(r.code, 0, r.err);
  t.is(r.out, nodeSpecific(paths).map((p) => `removed ${p}\n`).join(''));
  for (const p of nodeSpecific(paths)) t.false(fs.existsSync(p), p);
  t.deepEqual(fs.readdirSync(paths.stateDir), [], 'the state directory is empty');
  t.is(fs.statSync(paths.stateDir).mode & 0o777, 0o700, 'and keeps its mode');
  // What is left is exactly what was there minus what clean named: the node tree and the configuration.
  const gone = new Set(nodeSpecific(paths).map((p) => path.relative(paths.root, p)));
  const expected = Object.fromEntries(Object.entries(before).filter(([rel]) => ![...gone].some((g) => rel === g || rel === `${g}/` || rel.startsWith(`${g}/`))));
  t.deepEqual(tree(paths.root), expected);
  for (const kept of ['etc/sliceid/sliceid.toml', 'etc/sliceid/slice.d/10-setup', 'etc/other.conf', 'etc/hostname', 'var/emulab/boot/nodeid']) t.truthy(expected[kept], kept);

  t.is((await cli(clean, ['--root', paths.root])).out, 'nothing node-specific to remove\n');

  const again = await cli(once, ['--root', paths.root, '--no-geni-get', '--json']);
  t.is(again.code, 0, again.err);
  t.is(again.err, '', 'no warning: there was no state to set aside');
  const result = JSON.parse(again.out) as { issued: string[]; setAside?: unknown };
  t.deepEqual([...result.issued].sort(), ['authority emulab.net', 'node', 'slice']);
  t.is(result.setAside, undefined);
  t.is(fs.readFileSync(paths.slicename, 'utf8'), pnode.expected.slicename);
});

test.serial('refused while the daemon runs (it holds the instance lock): exit 1, one clear line, nothing removed', async (t) => {
  const paths = await usedNode();
  // This process takes the lock as a daemon would: the kernel names it as the holder.
  const attempt = acquireStateLock(paths.stateDir);
  if (!('lock' in attempt)) return t.fail('lock not taken');
  try {
    const before = tree(paths.root);
    for (const args of [[], ['--dry-run']]) {
      const r = await cli(clean, ['--root', paths.root, ...args]);
      t.is(r.code, 1);
      t.is(r.out, '');
      t.is(r.err, `sliceid: the daemon is running (pid ${process.pid}); stop it first (service sliceid stop); nothing removed\n`);
    }
    t.deepEqual(tree(paths.root), before);
  } finally {
    attempt.lock.release();
  }
});

test.serial('a pidfile naming a live process that holds no lock does not stop clean (the lock is the answer)', async (t) => {
  const paths = await usedNode();
  fs.writeFileSync(paths.pidFile, `${process.pid}\n`);
  const r = await cli(clean, ['--root', paths.root]);
  t.is(r.code, 0, r.err);
  t.false(fs.existsSync(paths.slicename));
  t.false(fs.existsSync(paths.pidFile));
});

test.serial('an operator CA inside the state directory is kept; a socket the config moves is removed', async (t) => {
  const paths = await usedNode();
  const ca = path.join(paths.stateDir, 'operator');
  fs.mkdirSync(ca);
  fs.writeFileSync(path.join(ca, 'ca.pem'), 'cert');
  fs.writeFileSync(path.join(ca, 'ca.key'), 'key');
  const socket = path.join(paths.root, 'run/sliceid/nm.sock');
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  fs.writeFileSync(socket, '');
  fs.writeFileSync(
    path.join(paths.root, 'etc/sliceid/sliceid.toml'),
    '[authority]\ncert = "/var/lib/sliceid/operator/ca.pem"\nkey = "/var/lib/sliceid/operator/ca.key"\n[api]\nsocket = "/run/sliceid/nm.sock"\n',
  );
  const r = await cli(clean, ['--root', paths.root, '--json']);
  t.is(r.code, 0, r.err);
  const removed = (JSON.parse(r.out) as { removed: string[] }).removed;
  t.true(removed.includes(socket));
  t.false(removed.some((p) => p.startsWith(ca)));
  t.deepEqual(fs.readdirSync(paths.stateDir), ['operator']);
  t.deepEqual(fs.readdirSync(ca).sort(), ['ca.key', 'ca.pem']);
  t.false(fs.existsSync(socket));
});

test.serial('usage: an unknown option is exit 2', async (t) => {
  const r = await cli(clean, ['--force']);
  t.is(r.code, 2);
  t.regex(r.err, /usage: sliceid clean/);
});
