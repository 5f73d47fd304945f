// One hooks pass at a time on a node, whoever starts it (the sliceid-hooks unit, the detached
// runner under SysV init, an operator's `sliceid hooks exec`): the runner lock, a kernel lock
// on <state dir>/hooks.lock like the daemon's own (src/fs/lock.ts), released when the runner
// dies however it dies; its holder's pid is what /proc/locks lists. Beside it, the request mark
// <state dir>/hooks.request: "look again" left by the daemon (a new slice, `sliceid hooks run`)
// before it starts a runner; a runner takes it before each pass and looks again after releasing
// its lock, so a request made while a pass runs is never lost (systemd merges a start of an
// active oneshot into the running one, and a second runner finds the lock held and leaves).
import fs from 'node:fs';
import path from 'node:path';
import { acquireStateLock, lockHolder, type LockAttempt, type LockState } from '../fs/lock.js';

export const HOOKS_LOCK = 'hooks.lock';
export const HOOKS_REQUEST = 'hooks.request';

export function acquireHooksLock(stateDir: string): LockAttempt {
  return acquireStateLock(stateDir, HOOKS_LOCK);
}

/** Who runs hooks now: the runner lock's holder. */
export function hooksRunner(stateDir: string): LockState {
  return lockHolder(stateDir, undefined, HOOKS_LOCK);
}

/** Leave the request mark (the daemon, before it starts a runner). */
export function requestHooks(stateDir: string): void {
  fs.writeFileSync(path.join(stateDir, HOOKS_REQUEST), `${Date.now()}\n`, { mode: 0o600 });
}

/** Take the request mark: whether there was one. */
export function takeHooksRequest(stateDir: string): boolean {
  try {
    fs.unlinkSync(path.join(stateDir, HOOKS_REQUEST));
    return true;
  } catch {
    return false;
  }
}

export function hooksRequested(stateDir: string): boolean {
  return fs.existsSync(path.join(stateDir, HOOKS_REQUEST));
}
