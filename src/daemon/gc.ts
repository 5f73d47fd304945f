// A full garbage collection after a refresh that changed the data. A refresh of 10,000 users
// allocates several times what it leaves alive (the file's text, parsed keys, rows, the memos it
// replaces); V8 would keep the old generation's pages committed until some later collection, a
// while that an idle daemon never reaches. Collecting at once gives the pages back: the resident
// set after such a refresh stays near what is alive (bench/README.md).
import v8 from 'node:v8';
import vm from 'node:vm';

let collect: (() => void) | undefined;

/**
 * V8's full collection without starting node with --expose-gc: %CollectGarbage, compiled in this
 * context with natives syntax allowed for that one function. (gc() made visible to a new context
 * instead costs a second native context, ~0.3 MB, for as long as the daemon runs.)
 */
function gcFunction(): () => void {
  if (!collect) {
    v8.setFlagsFromString('--allow-natives-syntax');
    try {
      collect = vm.runInThisContext('(function collectGarbage() { %CollectGarbage(0); })') as () => void;
    } catch {
      // A V8 without that runtime function: gc() in a context of its own.
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
      v8.setFlagsFromString('--no-expose-gc');
    } finally {
      v8.setFlagsFromString('--no-allow-natives-syntax');
    }
  }
  return collect;
}

/** Run a full, compacting collection now; returns the heap bytes it freed. */
export function collectGarbage(): number {
  const before = process.memoryUsage().heapUsed;
  const gc = gcFunction();
  // Move what is alive off partly used pages, so that those pages are freed too.
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return Math.max(0, before - process.memoryUsage().heapUsed);
}
