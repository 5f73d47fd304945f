// V8 heap settings for the long-running daemon (`sliceid run`, and `sliceid wait`), made before
// their modules load; and a looser setting for the duration of a refresh.
//
// - The young generation stays at its initial size. V8 doubles the semi-spaces under a steady
//   request load (up to 2 x 16 MiB on 64-bit) and never gives them back; the daemon's requests
//   leave almost nothing alive, so small semi-spaces cost little scavenging and keep ~30 MB out
//   of the resident set. The growth factor is read each time V8 would grow the space, so it
//   takes effect when set at run time (--max-semi-space-size is fixed when the heap is made).
// - The old generation grows by a quarter beyond what a full GC left alive (V8's default lets a
//   small heap grow to several times that): a load of short connections promotes some of each,
//   and this keeps that garbage to a few MB instead of tens.
// - V8's heuristics that favour memory over speed (--optimize-for-size): among them, a full GC
//   lets the old generation grow by 2 MB beyond what is alive rather than 8. The bench's load
//   leaves 65.5 MB resident instead of 69.6 with the same throughput (bench/README.md).
// - V8's memory reducer (a GC some seconds after allocation stops, to give memory back) is
//   not armed by a small heap merely growing, and when armed collects once rather than up to
//   three times, so an idle daemon stays asleep. V8 renamed the "once" flag: Node 20's V8 11.3
//   has --memory-reducer-single-gc, the packages' Node 22 (V8 12.4) --memory-reducer-gc-count=1
//   and no longer the old name (it printed "Error: unrecognized flag" on every start). A flag
//   V8 does not know is never set: each flag below is chosen for the running V8
//   (test/heap.test.ts runs every one of them under Node 20 and the packaged runtime).
// - TurboFan is off until the API serves its first request (src/optimizer.ts).
// A flag given to node on its command line wins.
//
// A refresh of a large slice allocates several times what it leaves alive (10,000 users: the
// file's text, 30,000 parsed and validated keys, rows, the answers rebuilt); under the tight
// old-generation settings V8 ran a full GC every few MB of it, a third of the refresh's time.
// During a refresh (burstHeap) the old generation grows as V8's defaults let it; afterwards the
// settings come back and the compacting GC that follows a refresh (src/daemon/gc.ts) takes the
// heap back down to what is alive.
import v8 from 'node:v8';
import { deferOptimizer } from './optimizer.js';

/** The old-generation settings daemonHeap made (not given on node's command line), and their loose values. */
const OLD_GENERATION: Array<{ tight: string; loose: string }> = [
  { tight: '--optimize-for-size', loose: '--no-optimize-for-size' },
  { tight: '--heap-growing-percent=25', loose: '--heap-growing-percent=0' },
];
let ours: Array<{ tight: string; loose: string }> = [];

const flagName = (flag: string): string => flag.replace(/^--(no-)?/, '--').replace(/=.*/, '');

/** V8's major.minor as one comparable number (11.3 -> 1103). */
function v8Version(version: string): number {
  const [major, minor] = version.split('.').map(Number);
  return (major ?? 0) * 100 + (minor ?? 0);
}

/** The memory reducer's flags for this V8 (see above): one GC when armed, none for small heaps. */
export function memoryReducerFlags(version: string = process.versions.v8): string[] {
  const once = v8Version(version) >= 1200 ? '--memory-reducer-gc-count=1' : '--memory-reducer-single-gc';
  return [once, '--no-memory-reducer-for-small-heaps'];
}

/** Set the daemon's heap flags (those not given to node by `execArgv`) and defer the optimizer. */
export function daemonHeap(execArgv: readonly string[] = process.execArgv): void {
  const given = (flag: string): boolean => execArgv.some((a) => flagName(a) === flagName(flag));
  if (!given('--max-semi-space-size') && !given('--semi-space-growth-factor')) v8.setFlagsFromString('--semi-space-growth-factor=1');
  ours = OLD_GENERATION.filter((f) => !given(f.tight));
  for (const flag of [...ours.map((f) => f.tight), ...memoryReducerFlags()]) {
    if (!given(flag)) v8.setFlagsFromString(flag);
  }
  deferOptimizer(execArgv);
}

/** Loosen (true) or restore (false) the old-generation settings daemonHeap made; cheap. */
export function burstHeap(on: boolean): void {
  for (const f of ours) v8.setFlagsFromString(on ? f.loose : f.tight);
}
