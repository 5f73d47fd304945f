// Remove from a production node_modules every package that nothing reaches at run time.
// Usage: node prune-deps.mjs APPDIR. Starts from APPDIR/package.json's dependencies and follows
// dependencies and optionalDependencies the way Node resolves them (nearest node_modules up the
// tree). better-sqlite3's prebuild-install (its install-time downloader) is not followed: the
// addon is built by build-rpm.sh. The packages' command-line programs go too. Prints what it removed.
import fs from 'node:fs';
import path from 'node:path';

const app = path.resolve(process.argv[2] ?? '.');
const INSTALL_TIME_ONLY = new Map([['better-sqlite3', new Set(['prebuild-install'])]]);

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const keep = new Set();

function resolve(fromDir, name) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === app || dir === path.dirname(dir)) return undefined;
  }
}

function visit(pkgDir) {
  if (keep.has(pkgDir)) return;
  keep.add(pkgDir);
  const pkg = readJson(path.join(pkgDir, 'package.json'));
  const skip = INSTALL_TIME_ONLY.get(pkg.name) ?? new Set();
  const deps = { ...pkg.optionalDependencies, ...pkg.dependencies };
  for (const name of Object.keys(deps)) {
    if (skip.has(name)) continue;
    const found = resolve(pkgDir, name);
    if (found) visit(found);
    else if (!(pkg.optionalDependencies && name in pkg.optionalDependencies)) {
      throw new Error(`${pkg.name} needs ${name}, which is not installed`);
    }
  }
}

visit(app);

// Every installed package directory (scoped and nested ones included).
function installed(dir, out = []) {
  const nm = path.join(dir, 'node_modules');
  if (!fs.existsSync(nm)) return out;
  for (const entry of fs.readdirSync(nm)) {
    if (entry.startsWith('.')) continue;
    const full = path.join(nm, entry);
    if (entry.startsWith('@')) {
      for (const sub of fs.readdirSync(full)) {
        const p = path.join(full, sub);
        if (fs.existsSync(path.join(p, 'package.json'))) out.push(p), installed(p, out);
      }
    } else if (fs.existsSync(path.join(full, 'package.json'))) {
      out.push(full);
      installed(full, out);
    }
  }
  return out;
}

for (const dir of installed(app)) {
  if (!fs.existsSync(dir)) continue;
  if (!keep.has(dir)) {
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`pruned ${path.relative(app, dir)}`);
    continue;
  }
  // The packages' command-line programs ("bin") are never run: sliceid only imports them.
  const { bin, directories } = readJson(path.join(dir, 'package.json'));
  const bins = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
  if (directories?.bin) bins.push(directories.bin);
  if (directories?.man) bins.push(directories.man);
  for (const file of bins) {
    const full = path.resolve(dir, file);
    if (full.startsWith(dir + path.sep) && fs.existsSync(full)) {
      fs.rmSync(full, { recursive: true });
      console.log(`pruned ${path.relative(app, full)}`);
    }
  }
}
fs.rmSync(path.join(app, 'node_modules', '.bin'), { recursive: true, force: true });
