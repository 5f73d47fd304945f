// Node trees for tests: the project's own under test/fixtures, plus ../shared/fixtures when that
// folder exists beside the checkout. Every tree is copied into a fresh temp dir before use.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest folder above this file with a package.json (works from dist/ too). */
export const projectDir = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (dir !== path.dirname(dir) && !fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();
export const ownFixtures = path.join(projectDir, 'test', 'fixtures');
export const sharedFixtures = path.resolve(projectDir, '..', 'shared', 'fixtures');

export interface Expected {
  slicename: string;
  slice: { urn: string; hrn: string };
  node: { urn: string; hrn: string; uuid?: string };
  /** What GetSSHKeys answers by default: every known slice, PlanetLab's key types only, "" when none. */
  GetSSHKeys: Record<string, string>;
  /** The same with `getsshkeys_key_types = "all"`: every cached key, in the cache's order. */
  GetSSHKeys_all_types: Record<string, string>;
  /** login -> the keys sshd gets for it (`authorized-keys LOGIN`). */
  users: Record<string, string[]>;
  note?: string;
}

export interface FixtureTree {
  /** e.g. "own/emulab-pnode" or "shared/pg-vnode" */
  readonly label: string;
  readonly name: string;
  readonly source: string;
  readonly expected: Expected;
}

/** The fixture sets: the project's own always, the shared ones only when they are beside the checkout. */
export function setsIn(): Array<[string, string]> {
  const sets: Array<[string, string]> = [['own', ownFixtures]];
  if (fs.existsSync(sharedFixtures)) sets.push(['shared', sharedFixtures]);
  return sets;
}

/** Every tree with an expected.json, from the project's own fixtures and the shared ones. */
export function goodTrees(): FixtureTree[] {
  const out: FixtureTree[] = [];
  for (const [set, dir] of setsIn()) {
    for (const name of fs.readdirSync(dir).sort()) {
      const exp = path.join(dir, name, 'expected.json');
      if (!fs.existsSync(exp)) continue;
      out.push({ label: `${set}/${name}`, name, source: path.join(dir, name), expected: JSON.parse(fs.readFileSync(exp, 'utf8')) as Expected });
    }
  }
  return out;
}

/** The broken tree `name` from every fixture set that has it. */
export function brokenTrees(name: string): Array<{ label: string; source: string }> {
  return setsIn()
    .map(([set, dir]) => ({ label: `${set}/broken/${name}`, source: path.join(dir, 'broken', name) }))
    .filter((t) => fs.existsSync(t.source));
}

const tempDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir, removed when the process exits. */
export function tempDir(prefix = 'sliceid-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Copy a fixture tree into a fresh temp root (expected.json left out) and return the root. */
export function copyTree(source: string): string {
  const root = tempDir();
  fs.cpSync(source, root, { recursive: true, filter: (src) => path.basename(src) !== 'expected.json' });
  return root;
}

/**
 * The builtin modules a node process loaded, written when it exits: `env` (NODE_OPTIONS) for the
 * process, `loaded()` once it has exited.
 */
export function moduleLoadRecorder(): { env: { NODE_OPTIONS: string }; loaded: () => string[] } {
  const dir = tempDir();
  const dump = path.join(dir, 'loaded.json');
  const preload = path.join(dir, 'dump.cjs');
  fs.writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.moduleLoadList)));\n`);
  return { env: { NODE_OPTIONS: `--require ${preload}` }, loaded: () => JSON.parse(fs.readFileSync(dump, 'utf8')) as string[] };
}

/** What no daemon start loads: zlib and worker_threads (their users load them when needed), and undici (on Node 22, ES module imports of node:http and node:util load them: src/builtins.ts). */
export const NOT_LOADED_AT_START = ['NativeModule zlib', 'NativeModule worker_threads', 'NativeModule internal/deps/undici/undici'];
