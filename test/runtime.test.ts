// The shipped runtime is the measured one (issue 25, point 8): every V8 flag sliceid sets while it
// runs (heap settings at start and around refreshes, the optimizer held off and resumed, the GC
// after a refresh) is one that V8 accepts, under Node 20 and under the Node 22 the packages carry:
// nothing is printed on stderr ("Error: unrecognized flag ..." was, on every `run`).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectDir } from './helpers/fixtures.js';
import { packagedNode, pinnedRuntime } from './helpers/runtime.js';
import { memoryReducerFlags } from '../src/heap.js';

const dist = (f: string): string => pathToFileURL(path.join(projectDir, 'dist', 'src', f)).href;

// Everything heap.ts, optimizer.ts and gc.ts do to V8 in a daemon's life, in one process.
const LIFE = `
const { daemonHeap, burstHeap } = await import(${JSON.stringify(dist('heap.js'))});
const { resumeOptimizer } = await import(${JSON.stringify(dist('optimizer.js'))});
const { collectGarbage } = await import(${JSON.stringify(dist('daemon/gc.js'))});
daemonHeap([]);
for (let i = 0; i < 3; i++) { burstHeap(true); burstHeap(false); collectGarbage(); }
resumeOptimizer();
process.stdout.write('done');
`;

// The collection after a refresh gives the freed pages back to the system: the resident set falls
// (Node 22's V8 kept them pooled after a plain full GC: RSS stayed at its peak).
const GIVES_BACK = `
const { collectGarbage } = await import(${JSON.stringify(dist('daemon/gc.js'))});
let junk = [];
for (let i = 0; i < 200000; i++) junk.push({ s: 'x'.repeat(200) + i, a: [i, i + 1] });
const peak = process.memoryUsage().rss;
junk = null;
collectGarbage();
// Node 20's V8 unmaps the freed pages on background threads: wait for the fall, 5 s at most
// (V8's memory reducer, which would also release them, waits 8 s).
const deadline = Date.now() + 5000;
while (peak - process.memoryUsage().rss < 40e6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
process.stdout.write(JSON.stringify({ peak, after: process.memoryUsage().rss }));
`;

const runtimes = (): Array<[string, string]> => [
  [`this node (${process.version})`, process.execPath],
  [`the packaged runtime (node ${pinnedRuntime().version})`, packagedNode()],
];

test('the memory reducer flag follows the V8 version (Node 20: single-gc; Node 22: gc-count)', (t) => {
  t.deepEqual(memoryReducerFlags('11.3.244.8-node.38'), ['--memory-reducer-single-gc', '--no-memory-reducer-for-small-heaps']);
  t.deepEqual(memoryReducerFlags('12.4.254.21-node.57'), ['--memory-reducer-gc-count=1', '--no-memory-reducer-for-small-heaps']);
});

for (const [label, pick] of [['this node', 0], ['the packaged runtime', 1]] as const) {
  test.serial(`${label}: every V8 flag of the daemon's life is accepted, nothing on stderr; the GC after a refresh gives memory back`, (t) => {
    const [name, node] = runtimes()[pick]!;
    t.log(name);
    const life = spawnSync(node, ['--input-type=module', '-e', LIFE], { encoding: 'utf8' });
    t.is(life.stderr, '');
    t.is(life.stdout, 'done');
    t.is(life.status, 0);
    const back = spawnSync(node, ['--input-type=module', '-e', GIVES_BACK], { encoding: 'utf8' });
    t.is(back.stderr, '');
    const { peak, after } = JSON.parse(back.stdout) as { peak: number; after: number };
    t.log(`RSS ${Math.round(peak / 1e6)} MB with 80 MB of garbage, ${Math.round(after / 1e6)} MB after collectGarbage()`);
    t.true(peak - after > 40e6, 'the freed pages went back to the system');
    // The CLI's own start of the daemon (flags set before the daemon's modules load), and wait's.
    for (const command of ['run', 'wait']) {
      const r = spawnSync(node, [path.join(projectDir, 'bin', 'sliceid.js'), command, '--help'], { encoding: 'utf8' });
      t.is(r.stderr, '', command);
      t.is(r.status, 0, command);
      t.regex(r.stdout, new RegExp(`^usage: sliceid ${command}`), command);
    }
  });
}
