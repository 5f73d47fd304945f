// V8's compilers beyond the interpreter (TurboFan, and the Sparkplug baseline compiler), off from
// the daemon's start until its API serves a request.
//
// The daemon's start-up code runs hot exactly once (its modules' top level: mime-types walks
// mime-db's 2,000 types, twice; the first refresh), and TurboFan optimizing it costs ~7 MB of
// compiler zones that glibc keeps after they are freed, and pages in ~4 MB of the compiler's own
// code. A node whose API is never called never needs optimized code; the first request turns the
// compilers back on and code that then runs hot is compiled as usual (bench/README.md). Sparkplug
// compiling the start-up code costs ~1 MB more.
import v8 from 'node:v8';

let deferred = false;

/** Turn TurboFan and Sparkplug off (before the daemon's modules load), unless node was given a JIT flag. */
export function deferOptimizer(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--(no-)?(turbofan|opt|sparkplug|jitless)(=|$)/.test(a))) return;
  v8.setFlagsFromString('--no-turbofan');
  v8.setFlagsFromString('--no-sparkplug');
  deferred = true;
}

/** Turn them back on if deferOptimizer turned them off; cheap to call again. */
export function resumeOptimizer(): void {
  if (!deferred) return;
  deferred = false;
  v8.setFlagsFromString('--sparkplug');
  v8.setFlagsFromString('--turbofan');
}

/** Whether TurboFan is still held off (for tests). */
export function optimizerDeferred(): boolean {
  return deferred;
}
