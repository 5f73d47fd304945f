// The production bundle (packaging/bundle.mjs, what bin/sliceid.js runs when dist/bundle exists)
// behaves as the compiled tree: built here into a scratch folder inside the project (its external
// packages resolve from node_modules), then run as the package would.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, moduleLoadRecorder, NOT_LOADED_AT_START, ownFixtures, projectDir, tempDir } from '../helpers/fixtures.js';
import { getSshKeys, runCli, startDaemon } from '../helpers/daemon.js';

const tree = path.join(ownFixtures, 'emulab-pnode');
const expected = JSON.parse(fs.readFileSync(path.join(tree, 'expected.json'), 'utf8')) as { slicename: string; GetSSHKeys: Record<string, string> };
const outdir = path.join(projectDir, '.tmp', `bundle-test-${process.pid}`);
const cli = path.join(outdir, 'cli.js');

test.before(() => {
  execFileSync(process.execPath, [path.join(projectDir, 'packaging', 'bundle.mjs'), outdir], { cwd: projectDir, stdio: 'pipe' });
});
test.after.always(() => fs.rmSync(outdir, { recursive: true, force: true }));

test('one entry and one file per command; mime-db reduced to the types the server names', (t) => {
  const files = fs.readdirSync(outdir);
  t.true(files.includes('cli.js'));
  for (const command of ['run', 'once', 'status', 'keys', 'authorized-keys', 'show-gid']) t.true(files.some((f) => f.startsWith(`${command}-`)), command);
  const all = files.map((f) => fs.readFileSync(path.join(outdir, f), 'utf8')).join('\n');
  // "application/vnd.3gpp.pic-bw-large" is one of mime-db's entries: neither a copy nor a require of it.
  t.false(all.includes('vnd.3gpp.pic-bw-large'));
  t.false(/\w\("mime-db"\)/.test(all));
  t.regex(all, /"text\/xml":\{source:"iana"/);
});

test.serial('the daemon from the bundle starts without zlib, worker_threads or undici (their users load them when needed)', async (t) => {
  const root = copyTree(tree);
  const rec = moduleLoadRecorder();
  const d = await startDaemon(root, ['--no-socket'], 60000, cli, { ...process.env, ...rec.env });
  t.is(await d.stop(), 0);
  const loaded = rec.loaded();
  t.true(loaded.includes('NativeModule http'), 'the list is the one of the daemon');
  for (const m of NOT_LOADED_AT_START) t.false(loaded.includes(m), m);
});

test("koa's type lookups answer the same with the bundle's mime-db subset as with the whole of it", async (t) => {
  const { LOOKED_UP, mimeSubset } = (await import(pathToFileURL(path.join(projectDir, 'packaging', 'mime-subset.mjs')).href)) as {
    LOOKED_UP: string[];
    mimeSubset: (db: Record<string, unknown>) => Record<string, unknown>;
  };
  const fromKoa = createRequire(createRequire(path.join(projectDir, 'package.json')).resolve('koa'));
  const mimeTypesFile = fromKoa.resolve('mime-types');
  const db = createRequire(mimeTypesFile)('mime-db') as Record<string, unknown>;
  // koa's own mime-types, evaluated once with each database.
  type MimeTypes = { contentType(s: string): string | false; lookup(s: string): string | false };
  const withDb = (database: Record<string, unknown>): MimeTypes => {
    const mod = { exports: {} as MimeTypes };
    const req = createRequire(mimeTypesFile);
    new Function('require', 'module', 'exports', fs.readFileSync(mimeTypesFile, 'utf8'))((id: string) => (id === 'mime-db' ? database : req(id)), mod, mod.exports);
    return mod.exports;
  };
  const full = withDb(db);
  const subset = withDb(mimeSubset(db));
  for (const name of LOOKED_UP) {
    t.is(subset.contentType(name), full.contentType(name), name);
    t.is(subset.lookup(name), full.lookup(name), name);
  }
  t.is(full.contentType('text'), 'text/plain; charset=utf-8');
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
