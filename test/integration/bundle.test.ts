// The production bundle (packaging/bundle.mjs, what bin/sliceid.js runs when dist/bundle exists)
// behaves as the compiled tree: built here into a scratch folder inside the project (its external
// packages resolve from node_modules), then run as the package would.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures, projectDir, tempDir } from '../helpers/fixtures.js';
import { getSshKeys, runCli, startDaemon } from '../helpers/daemon.js';

const tree = path.join(ownFixtures, 'emulab-pnode');
const expected = JSON.parse(fs.readFileSync(path.join(tree, 'expected.json'), 'utf8')) as { slicename: string; GetSSHKeys: Record<string, string> };
const outdir = path.join(projectDir, '.tmp', `bundle-test-${process.pid}`);
const cli = path.join(outdir, 'cli.js');

test.before(() => {
  execFileSync(process.execPath, [path.join(projectDir, 'packaging', 'bundle.mjs'), outdir], { cwd: projectDir, stdio: 'pipe' });
});
test.after.always(() => fs.rmSync(outdir, { recursive: true, force: true }));

test('one entry and one file per command; mime-db is read from node_modules, once', (t) => {
  const files = fs.readdirSync(outdir);
  t.true(files.includes('cli.js'));
  for (const command of ['run', 'once', 'status', 'keys', 'authorized-keys', 'show-gid']) t.true(files.some((f) => f.startsWith(`${command}-`)), command);
  const all = files.map((f) => fs.readFileSync(path.join(outdir, f), 'utf8')).join('\n');
  // "application/vnd.3gpp.pic-bw-large" is one of mime-db's entries: no copy is inside.
  t.false(all.includes('vnd.3gpp.pic-bw-large'));
  // koa's mime-types and accepts' both come from one copy that requires mime-db.
  t.is(all.match(/\w\("mime-db"\)/g)?.length, 1);
});

test('version and once from the bundle', async (t) => {
  const version = await runCli(['--version'], { cli });
  t.is(version.stdout, `sliceid ${(JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  const root = copyTree(tree);
  const once = await runCli(['once', '--root', root, '--json', '--no-geni-get'], { cli });
  t.is(once.code, 0, once.stderr);
  t.is(fs.readFileSync(path.join(root, 'etc', 'slicename'), 'utf8'), expected.slicename);
});

test('a config file: the schema and TOML reader load from node_modules, errors name file and line', async (t) => {
  const root = copyTree(tree);
  const config = path.join(tempDir(), 'c.toml');
  fs.writeFileSync(config, '[api]\nprot = 1\n');
  const bad = await runCli(['once', '--root', root, '--config', config], { cli });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /c\.toml:2: "api\.prot" is not a known setting in \[api\]/);
  fs.writeFileSync(config, '[gid]\nvalidity_days = 400\n');
  const good = await runCli(['once', '--root', root, '--config', config, '--no-geni-get'], { cli });
  t.is(good.code, 0, good.stderr);
});

test.serial('the daemon from the bundle answers GetSSHKeys as the compiled tree does; keys reads its cache', async (t) => {
  const root = copyTree(tree);
  const d = await startDaemon(root, ['--no-socket'], 60000, cli);
  try {
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
  } finally {
    t.is(await d.stop(), 0);
  }
  const keys = await runCli(['keys', '--root', root, '--json'], { cli });
  t.is(keys.code, 0, keys.stderr);
  t.deepEqual(JSON.parse(keys.stdout), expected.GetSSHKeys);
});
