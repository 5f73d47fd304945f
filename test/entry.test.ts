// A checkout runs what it built (issue 25, point 9): bin/sliceid.js runs dist/src (what `npm run
// build` compiled) even when an older dist/bundle lies beside it (left by `npm run bench`, `npm
// run bundle` or a package build); only a package's bundle, marked by packaging/stage.sh as its
// entry, is run instead.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectDir, tempDir } from './helpers/fixtures.js';

/** A scratch tree with the real bin/sliceid.js and two stand-in entries that say which one ran. */
function layout(): string {
  const dir = tempDir('sliceid-entry-');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.copyFileSync(path.join(projectDir, 'bin', 'sliceid.js'), path.join(dir, 'bin', 'sliceid.js'));
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
  for (const [sub, name] of [['src', 'compiled tree'], ['bundle', 'bundle']] as const) {
    fs.mkdirSync(path.join(dir, 'dist', sub), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dist', sub, 'cli.js'), `export function run() { process.stdout.write(${JSON.stringify(name)}); }\n`);
  }
  return dir;
}

const ran = (dir: string): string => {
  const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'sliceid.js'), 'status'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
};

test('a checkout with a bundle left beside the compiled tree runs the compiled tree', (t) => {
  const dir = layout();
  // The bundle is older than the sources' last build: exactly what must never run.
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(path.join(dir, 'dist', 'bundle', 'cli.js'), old, old);
  t.is(ran(dir), 'compiled tree');
});

test("a package's bundle, marked as its entry by stage.sh, is what the package runs", (t) => {
  const dir = layout();
  fs.writeFileSync(path.join(dir, 'dist', 'bundle', 'ENTRY'), 'packaged by stage.sh\n');
  t.is(ran(dir), 'bundle');
  t.regex(fs.readFileSync(path.join(projectDir, 'packaging', 'stage.sh'), 'utf8'), /^printf '[^']*' >"\$app\/dist\/bundle\/ENTRY"$/m, 'stage.sh marks the staged bundle');
});
