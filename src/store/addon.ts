// Where better-sqlite3's compiled addon is, found once and handed to it (`nativeBinding`). Its
// own default (the `bindings` package) reads the caller's stack and tries a dozen paths, ~4 ms of
// every start, and finds nothing once better-sqlite3's JavaScript is inside the production bundle
// (packaging/bundle.mjs), whose files are not in better-sqlite3's folder.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

/**
 * Where the addon may be in the package folder `dir`: build/Release (npm's build, and the package
 * with its own runtime), then lib/binding/node-v<ABI>-<platform>-<arch> (the package for the
 * system's nodejs carries one per Node ABI there: packaging/stage.sh).
 */
export function addonCandidates(dir: string, abi = process.versions.modules, platform: string = process.platform, arch: string = process.arch): string[] {
  return [
    path.join(dir, 'build', 'Release', 'better_sqlite3.node'),
    path.join(dir, 'lib', 'binding', `node-v${abi}-${platform}-${arch}`, 'better_sqlite3.node'),
  ];
}

let found: string | null | undefined;

/** The addon's path, or undefined (better-sqlite3 then looks for itself, and says where it looked). */
export function nativeBinding(): string | undefined {
  if (found === undefined) {
    let dir: string | undefined;
    try {
      dir = path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
    } catch {
      dir = undefined;
    }
    found = (dir && addonCandidates(dir).find((f) => fs.existsSync(f))) || null;
  }
  return found ?? undefined;
}
