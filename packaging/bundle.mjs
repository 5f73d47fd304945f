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
import { mimeSubset } from './mime-subset.mjs';

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

/**
 * Built-in modules that dependencies load at start but sliceid's daemon never uses, each replaced,
 * for that dependency only, by a stand-in that loads the real module the first time it is needed
 * (~1 MB resident less at start, bench/README.md):
 * - koa's `destroy` loads node:zlib to recognise zlib streams; sliceid's bodies are Buffers, so the
 *   check never runs (when it does, the getters load zlib).
 * - pino loads worker_threads for its transports (thread-stream: the Worker is made through the
 *   real module) and to ask `isMainThread`, which only an asynchronous destination consults;
 *   sliceid logs synchronously from the main thread (src/log.ts), where it is true.
 */
const ZLIB_CLASSES = ['Gzip', 'Gunzip', 'Deflate', 'DeflateRaw', 'Inflate', 'InflateRaw', 'Unzip'];
const STAND_INS = {
  'destroy:zlib': `module.exports = {${ZLIB_CLASSES.map((c) => `get ${c}() { return require('node:zlib').${c}; }`).join(', ')}};`,
  'pino:worker_threads': 'module.exports = { isMainThread: true };',
  'thread-stream:worker_threads':
    "module.exports = { Worker: class Worker { constructor(...args) { return new (require('node:worker_threads').Worker)(...args); } } };",
};
/** mime-db: only the entries sliceid's server can be asked for (packaging/mime-subset.mjs). */
const servedMimeTypes = {
  name: 'served-mime-types',
  setup(b) {
    const db = createRequire(fromKoa.resolve('mime-types'))('mime-db');
    b.onResolve({ filter: /^mime-db$/ }, () => ({ path: 'mime-db', namespace: 'sliceid-stand-in' }));
    b.onLoad({ filter: /^mime-db$/, namespace: 'sliceid-stand-in' }, () => ({ loader: 'json', contents: JSON.stringify(mimeSubset(db)) }));
  },
};

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(zlib|worker_threads)$/ }, (args) => {
      const pkg = /[\\/]node_modules[\\/]([^\\/]+)[\\/][^]*$/.exec(args.importer)?.[1];
      const key = `${pkg}:${args.path.replace(/^node:/, '')}`;
      return key in STAND_INS ? { path: key, namespace: 'sliceid-stand-in' } : undefined;
    });
    b.onLoad({ filter: /:/, namespace: 'sliceid-stand-in' }, (args) => ({ loader: 'js', contents: STAND_INS[args.path] }));
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
  external: ['better-sqlite3', 'node-forge', 'zod', 'smol-toml'],
  // The bundled CommonJS packages call require() for node's built-in modules.
  banner: { js: "import{createRequire as __sliceidRequire}from'node:module';const require=__sliceidRequire(import.meta.url);" },
  plugins: [oneMimeTypes, servedMimeTypes, lazyBuiltins],
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.entries(result.metafile.outputs);
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0);
process.stdout.write(`${path.relative(project, outdir)}: ${outputs.length} files, ${(bytes / 1024).toFixed(0)} KiB\n`);
