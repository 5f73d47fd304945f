// src/daemon/gc.ts: the compacting full GC keeps working for the daemon's whole life, also once V8
// has flushed the bytecode of code that ran long ago (it did not: a function compiled with natives
// syntax was recompiled without it and threw, and the refresh that called it stopped short).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectDir } from '../helpers/fixtures.js';

const gcModule = pathToFileURL(path.join(projectDir, 'dist', 'src', 'daemon', 'gc.js')).href;

test('collectGarbage frees garbage, call after call, with other collections (and bytecode flushing) in between', (t) => {
  const code = `
    const { collectGarbage } = await import(${JSON.stringify(gcModule)});
    const freed = [];
    for (let round = 0; round < 5; round++) {
      let junk = Array.from({ length: 50000 }, (_, i) => ({ i, s: 'x' + i }));
      junk = null;
      freed.push(collectGarbage());
      // Collections it did not ask for, long enough for V8 to flush what has not run since.
      for (let i = 0; i < 8; i++) gc();
    }
    const v8 = await import('node:v8');
    process.stdout.write(JSON.stringify({ freed, contexts: v8.getHeapStatistics().number_of_native_contexts }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--stress-flush-code', '--input-type=module', '-e', code], { encoding: 'utf8', cwd: projectDir });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { freed: number[]; contexts: number };
  t.is(out.freed.length, 5);
  for (const f of out.freed) t.true(f > 1_000_000, `freed ${f} bytes`);
  t.is(out.contexts, 1, 'no second native context');
});
