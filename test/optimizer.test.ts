// TurboFan held off until resumeOptimizer (src/optimizer.ts): checked in a child node with V8's
// own view of a hot function (%GetOptimizationStatus needs --allow-natives-syntax).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectDir } from './helpers/fixtures.js';

const moduleUrl = pathToFileURL(path.join(projectDir, 'src', 'optimizer.ts')).href;

/** V8's OptimizationStatus bits (src/runtime/runtime.h): optimized by TurboFan, compiled by Sparkplug. */
const TURBOFANNED = 1 << 6;
const BASELINE = 1 << 15;

function probe(execArgv: string[], script: string): { before: number; after: number; deferred: boolean[] } {
  const code = `
    const o = await import(${JSON.stringify(moduleUrl)});
    const status = (f) => eval('%GetOptimizationStatus(f)');
    const hot = () => { function sum(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; } for (let k = 0; k < 3000; k++) sum(5000); return sum; };
    const deferred = [];
    ${script}
    process.stdout.write(JSON.stringify({ before, after, deferred }));`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--allow-natives-syntax', ...execArgv, '--input-type=module', '-e', code], { encoding: 'utf8', cwd: projectDir });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { before: number; after: number; deferred: boolean[] };
}

test('deferred: a hot function stays in the interpreter; after resume one is optimized', (t) => {
  const r = probe([], `
    o.deferOptimizer([]); deferred.push(o.optimizerDeferred());
    const before = status(hot());
    o.resumeOptimizer(); deferred.push(o.optimizerDeferred());
    o.resumeOptimizer();
    const after = status(hot());`);
  t.deepEqual(r.deferred, [true, false]);
  t.is(r.before & (TURBOFANNED | BASELINE), 0);
  t.not(r.after & TURBOFANNED, 0);
});

test('a JIT flag given to node wins: nothing is deferred', (t) => {
  const r = probe(['--turbofan'], `
    o.deferOptimizer(['--turbofan']); deferred.push(o.optimizerDeferred());
    const before = status(hot());
    const after = before;`);
  t.deepEqual(r.deferred, [false]);
  t.not(r.before & TURBOFANNED, 0);
  t.false(probe([], `o.deferOptimizer(['--no-opt']); deferred.push(o.optimizerDeferred()); const before = 0, after = 0;`).deferred[0]!);
});
