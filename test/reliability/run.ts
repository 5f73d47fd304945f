// The reliability suite: `npm run test:reliability [-- --quick] [-- --only fuzz,storm]`.
// Runs the parts in sequence against the real daemon (dist/src/cli.js), prints each part's
// figures, and ends with the plain line `N passed, N failed` (N = parts). Exit 1 if any failed.
import fs from 'node:fs';
import { cliPath } from '../helpers/daemon.js';
import { cleanupAll, cleanupAllSync, type Part, type PartResult } from './common.js';

interface PartEntry {
  readonly name: string;
  readonly load: () => Promise<{ run: Part }>;
  /** A hard bound on the part's time (ms), full and quick profile. */
  readonly limit: { full: number; quick: number };
}

const PARTS: PartEntry[] = [
  { name: 'fuzz', load: () => import('./fuzz.js'), limit: { full: 150_000, quick: 50_000 } },
  { name: 'hostile-http', load: () => import('./hostile-http.js'), limit: { full: 150_000, quick: 45_000 } },
  { name: 'crash', load: () => import('./crash.js'), limit: { full: 300_000, quick: 90_000 } },
  { name: 'fs-faults', load: () => import('./fs-faults.js'), limit: { full: 60_000, quick: 45_000 } },
  { name: 'storm', load: () => import('./storm.js'), limit: { full: 90_000, quick: 30_000 } },
  { name: 'load', load: () => import('./load.js'), limit: { full: 100_000, quick: 40_000 } },
];

function parseArgs(argv: string[]): { quick: boolean; only: string[] | undefined } {
  let quick = false;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--only') only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--only=')) only = a.slice(7).split(',').filter(Boolean);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: run.js [--quick] [--only ${PARTS.map((p) => p.name).join(',')}]\n`);
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (only) {
    const unknown = only.filter((n) => !PARTS.some((p) => p.name === n));
    if (unknown.length) {
      process.stderr.write(`unknown part(s): ${unknown.join(', ')}\n`);
      process.exit(2);
    }
  }
  return { quick, only };
}

async function withLimit(p: Promise<PartResult>, ms: number, name: string): Promise<PartResult> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<PartResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ figures: [], failures: [`${name} did not finish within its bound of ${ms / 1000} s`], skipped: [], notes: [] }),
      ms,
    );
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<number> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  // Every restarted daemon registers an exit hook; the crash part starts dozens.
  process.setMaxListeners(0);
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\n${sig}: killing the daemons and undoing mounts\n`);
    cleanupAllSync();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanupAllSync);

  if (!fs.existsSync(cliPath)) {
    process.stdout.write(`the daemon is not built: ${cliPath} is missing (run npm run build)\n0 passed, ${PARTS.length} failed\n`);
    return 1;
  }
  const parts = PARTS.filter((p) => !only || only.includes(p.name));
  const started = Date.now();
  process.stdout.write(`sliceid reliability suite, ${quick ? 'quick' : 'full'} profile, ${parts.length} part(s)\n`);
  let passed = 0;
  let failed = 0;
  for (const part of parts) {
    const t0 = Date.now();
    process.stdout.write(`\n== ${part.name}\n`);
    const log = (line: string): void => void process.stdout.write(`   ${line}\n`);
    let result: PartResult;
    try {
      const mod = await part.load();
      result = await withLimit(mod.run({ quick, log }), quick ? part.limit.quick : part.limit.full, part.name);
    } catch (err) {
      result = { figures: [], failures: [`threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`], skipped: [], notes: [] };
    } finally {
      await cleanupAll();
    }
    for (const [k, v] of result.figures) log(`${k}: ${v}`);
    for (const s of result.skipped) log(`SKIPPED ${s}`);
    for (const n of result.notes) log(`note: ${n}`);
    for (const f of result.failures) log(`FAIL ${f}`);
    const ok = result.failures.length === 0;
    if (ok) passed++;
    else failed++;
    process.stdout.write(`== ${part.name}: ${ok ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(`\nsuite time ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    cleanupAllSync();
    // Open handles (agents, timers of a part that overran) must not keep the suite alive.
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    cleanupAllSync();
    process.exit(1);
  },
);
