#!/usr/bin/env node
// npm run bundle: the daemon and its commands as a few minified ES modules in dist/bundle/, which
// bin/sliceid.js loads when present (what the package ships); the tests run dist/src/.
//
// One file per command (code splitting keeps `once`, `status`... out of the daemon's start), the
// pure-JS dependencies inside. Left outside, resolved from node_modules at run time:
// better-sqlite3 (a native addon), what src/ loads through createRequire only when needed
// (node-forge, zod, smol-toml), and mime-db: its 2,000 types as a 150 KB object literal were a
// third of the daemon's file to compile, while node reads them with JSON.parse from
// node_modules. koa's `accepts` carries its own older mime-types and mime-db; it is given koa's
// own mime-types, so that one mime-db is loaded, not two.
// Measured effect: bench/README.md ("After").
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.resolve(project, process.argv[2] ?? 'dist/bundle');
const fromKoa = createRequire(createRequire(path.join(project, 'package.json')).resolve('koa'));

/** Every import of mime-types resolves to the copy koa itself uses. */
const oneMimeTypes = {
  name: 'one-mime-types',
  setup(b) {
    const target = fromKoa.resolve('mime-types');
    b.onResolve({ filter: /^mime-types$/ }, () => ({ path: target }));
  },
};

fs.rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: project,
  entryPoints: { cli: 'src/cli.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  external: ['better-sqlite3', 'node-forge', 'zod', 'smol-toml', 'mime-db'],
  // The bundled CommonJS packages call require() for node's built-in modules.
  banner: { js: "import{createRequire as __sliceidRequire}from'node:module';const require=__sliceidRequire(import.meta.url);" },
  plugins: [oneMimeTypes],
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.entries(result.metafile.outputs);
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0);
process.stdout.write(`${path.relative(project, outdir)}: ${outputs.length} files, ${(bytes / 1024).toFixed(0)} KiB\n`);
