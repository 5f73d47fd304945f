// `sliceid authorized-keys USER` (compiled, in dist/): reads USER's key file and nothing else,
// through every entry point (the CommonJS module itself, the executable the package installs as
// /usr/lib/sliceid/libexec/authorized-keys, bin/sliceid.js, src/cli.ts).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { LOGIN } from '../../src/keys/accounts.js';
import { writeSshdKeys } from '../../src/writers/sshd-keys.js';
import { projectDir, tempDir } from '../helpers/fixtures.js';
import { cliPath } from '../helpers/daemon.js';

const reader = path.join(projectDir, 'dist', 'src', 'commands', 'authorized-keys.cjs');
const bin = path.join(projectDir, 'bin', 'sliceid.js');
const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX897pEdvFHAgo3uOhSNWqsw+c0f4U8Fu5ucKX/1zvk ada@laptop';
const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC0 ada@desk';

// The packaged executable: the module behind `#!` this node (packaging/authorized-keys-command.sh).
const libexec = path.join(tempDir(), 'libexec');
execFileSync('sh', [path.join(projectDir, 'packaging', 'authorized-keys-command.sh'), process.execPath, libexec]);

/** [label, argv before the user's arguments]; an argv starting with '' is an executable of its own. */
const entries: Array<[string, string[]]> = [
  ['the CommonJS module', [reader]],
  ['libexec/authorized-keys (#!)', ['', path.join(libexec, 'authorized-keys')]],
  ['bin/sliceid.js', [bin, 'authorized-keys']],
  ['src/cli.ts', [cliPath, 'authorized-keys']],
];

function run(entry: string[], ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const [cmd, argv] = entry[0] === '' ? [entry[1]!, [...entry.slice(2), ...args]] : [process.execPath, [...entry, ...args]];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 20000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function node(): Promise<string> {
  const root = tempDir();
  await writeSshdKeys(nodePaths(root), [{ login: 'ada', keys: [ED, RSA] }]);
  return root;
}

test('prints the key file exactly; an unknown user or no key directory: nothing, exit 0', async (t) => {
  const root = await node();
  for (const [label, entry] of entries) {
    t.deepEqual(run(entry, 'ada', '--root', root), { code: 0, stdout: `${ED}\n${RSA}\n`, stderr: '' }, label);
    t.deepEqual(run(entry, 'nobody', '--root', root), { code: 0, stdout: '', stderr: '' }, label);
    t.deepEqual(run(entry, 'ada', '--root', tempDir()), { code: 0, stdout: '', stderr: '' }, label);
  }
});

test('a name that is not a login reads nothing, even where a file of that name exists', async (t) => {
  const root = await node();
  const dir = nodePaths(root).sshdKeysDir;
  fs.writeFileSync(path.join(root, 'etc', 'secret'), 'not keys\n');
  fs.writeFileSync(path.join(dir, '.hidden'), 'not keys\n');
  for (const name of ['../secret', '.hidden', '..', 'ada/', 'a b', '', 'x'.repeat(65)]) {
    const r = run([reader], name, '--root', root);
    t.deepEqual([r.code, r.stdout], name === '' ? [2, ''] : [0, ''], JSON.stringify(name));
  }
});

test('a symbolic link, a FIFO, a group-writable file or directory are refused: nothing printed, exit 1', async (t) => {
  const root = await node();
  const dir = nodePaths(root).sshdKeysDir;
  fs.symlinkSync(path.join(dir, 'ada'), path.join(dir, 'link'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.writeFileSync(path.join(dir, 'loose'), `${ED}\n`, { mode: 0o664 });
  fs.chmodSync(path.join(dir, 'loose'), 0o664);
  for (const [name, why] of [['link', /symbolic link/], ['fifo', /not a regular file/], ['loose', /writable by group or others/]] as const) {
    const r = run([reader], name, '--root', root);
    t.is(r.code, 1, name);
    t.is(r.stdout, '', name);
    t.regex(r.stderr, why, name);
  }
  fs.chmodSync(dir, 0o775);
  const r = run([reader], 'ada', '--root', root);
  t.deepEqual([r.code, r.stdout], [1, '']);
  t.regex(r.stderr, /authorized_keys: refused: writable by group or others/);
});

test('usage: exactly one user; --help; the common options are accepted', async (t) => {
  const root = await node();
  t.is(run([reader], '--root', root).code, 2);
  t.is(run([reader], 'ada', 'ben', '--root', root).code, 2);
  t.regex(run([reader], '--help').stdout, /usage: sliceid authorized-keys USER/);
  t.is(run([reader], 'ada', '--root', root, '--json', '--config', '/nonexistent').stdout, `${ED}\n${RSA}\n`);
});

test('loads no other module of ours; its login grammar and key directory are those of the rest of sliceid', async (t) => {
  const roots = ['/', '/tmp/x', 'rel/tree', '/a/../b/'];
  const probe = `const m = require(${JSON.stringify(reader)});
    process.stdout.write(JSON.stringify({ loaded: Object.keys(require.cache), login: [m.KEY_FILE_LOGIN.source, m.KEY_FILE_LOGIN.flags],
      dirs: ${JSON.stringify(roots)}.map(m.keysDir) }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })) as { loaded: string[]; login: string[]; dirs: string[] };
  t.deepEqual(out.loaded, [reader]);
  t.deepEqual(out.login, [LOGIN.source, LOGIN.flags]);
  t.deepEqual(out.dirs, roots.map((r) => nodePaths(r).sshdKeysDir));
});
