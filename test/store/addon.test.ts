// src/store/addon.ts: where better-sqlite3's addon is looked for, and that this checkout's is found.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { addonCandidates, nativeBinding } from '../../src/store/addon.js';
import { tempDir } from '../helpers/fixtures.js';

test('the places packages put the addon: build/Release, then lib/binding/node-v<ABI>-<platform>-<arch>', (t) => {
  t.deepEqual(addonCandidates('/usr/lib/sliceid/node_modules/better-sqlite3', '127', 'linux', 'arm64'), [
    '/usr/lib/sliceid/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
    '/usr/lib/sliceid/node_modules/better-sqlite3/lib/binding/node-v127-linux-arm64/better_sqlite3.node',
  ]);
  // The system-nodejs package's layout (packaging/stage.sh): found when build/Release is not there.
  const dir = tempDir();
  const [release, binding] = addonCandidates(dir);
  fs.mkdirSync(path.dirname(binding!), { recursive: true });
  fs.writeFileSync(binding!, '');
  t.is(addonCandidates(dir).find((f) => fs.existsSync(f)), binding);
  t.false(fs.existsSync(release!));
});

test("this checkout's addon is found, and is the one better-sqlite3 would load", (t) => {
  const found = nativeBinding();
  const pkg = path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
  t.is(found, path.join(pkg, 'build', 'Release', 'better_sqlite3.node'));
  t.is(nativeBinding(), found, 'looked up once');
});
