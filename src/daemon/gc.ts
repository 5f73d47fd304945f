// A full garbage collection after a refresh that changed the data. A refresh of 10,000 users
// allocates several times what it leaves alive (the file's text, parsed keys, rows, the memos it
// replaces); V8 would keep the old generation's pages committed until some later collection, a
// while that an idle daemon never reaches. Collecting at once gives the pages back: the resident
// set after such a refresh stays near what is alive (bench/README.md).
import v8 from 'node:v8';
import vm from 'node:vm';

/** gc() in a context of its own, made only when natives syntax is not available (or not enough). */
let contextGc: ((options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void) | undefined;

/**
 * V8 12 and later (Node 22, the runtime the packages carry) keep the pages a full collection
 * freed in a pool, still committed, until a collection that reduces memory: after a plain one the
 * resident set stayed where it was (a probe: heap 84 -> 7 MB, RSS 133 -> 131 MB; the 10,000-user
 * refresh left 111 MB of such pages). gc()'s "last-resort" flavour is that collection (RSS 133 ->
 * 53 MB). V8 11 (Node 20) gives the pages back at every full collection, and its gc() does not
 * take these options.
 */
const POOLS_PAGES = Number(process.versions.v8.split('.')[0]) >= 12;

function exposedGc(): NonNullable<typeof contextGc> {
  v8.setFlagsFromString('--expose-gc');
  try {
    return vm.runInNewContext('gc') as NonNullable<typeof contextGc>;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

/**
 * V8's full collection without starting node with --expose-gc: `%CollectGarbage`, compiled and
 * run at once with natives syntax allowed for that moment. Not a function compiled once and kept:
 * V8 flushes the bytecode of code that has not run for a while and compiles it again when it is
 * next called, by then without natives syntax (a SyntaxError that stopped a refresh short). gc()
 * exposed to a new context instead would cost a second native context (~0.3 MB) for the daemon's
 * life: only the fallback.
 */
function fullGc(): void {
  if (POOLS_PAGES) {
    contextGc ??= exposedGc();
    contextGc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    return;
  }
  if (!contextGc) {
    v8.setFlagsFromString('--allow-natives-syntax');
    try {
      vm.runInThisContext('%CollectGarbage(0)');
      return;
    } catch {
      // A V8 without that runtime function: the fallback below, from now on.
    } finally {
      v8.setFlagsFromString('--no-allow-natives-syntax');
    }
    contextGc = exposedGc();
  }
  contextGc();
}

/** Run a full, compacting collection now; returns the heap bytes it freed. */
export function collectGarbage(): number {
  const before = process.memoryUsage().heapUsed;
  // Move what is alive off partly used pages, so that those pages are freed too.
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    fullGc();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return Math.max(0, before - process.memoryUsage().heapUsed);
}
