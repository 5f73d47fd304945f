// The slice hooks in slice.d, run-parts style: names of letters, digits, '-' and '_' only (so
// backup names such as `x~`, `x.rpmsave`, `x.bak` never match), executable regular files, in
// lexical (byte) order. Only a hook that is root-owned and not group- or world-writable, in a
// directory that is too, may run: anyone else who can write it could run code as root.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const HOOK_NAME = /^[A-Za-z0-9_-]+$/;

export interface Hook {
  readonly name: string;
  readonly path: string;
  /** sha256 of the content, hex: a changed hook runs again. */
  readonly hash: string;
}

export interface RefusedHook {
  readonly name: string;
  readonly path: string;
  /** Why it may not run, one sentence naming the rule. */
  readonly reason: string;
}

export interface HookSet {
  readonly dir: string;
  /** The hooks that may run, in order. */
  readonly hooks: readonly Hook[];
  /** Hooks (or the whole directory, name "*") that may not run: status problems. */
  readonly refused: readonly RefusedHook[];
  /** Entries skipped as run-parts skips them (bad name, not executable, not a file). */
  readonly skipped: readonly string[];
}

/** Why `st` may not be trusted to run as root, or undefined when it may. */
export function unsafeOwnership(st: fs.Stats): string | undefined {
  if (st.uid !== 0) return `is owned by uid ${st.uid}, not root`;
  if (st.mode & 0o020) return `is group-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  if (st.mode & 0o002) return `is world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** Sort as run-parts does (C locale: byte order); names are ASCII, so code units are bytes. */
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function discoverHooks(dir: string): HookSet {
  const hooks: Hook[] = [];
  const refused: RefusedHook[] = [];
  const skipped: string[] = [];
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { dir, hooks, refused, skipped };
    return { dir, hooks, refused: [{ name: '*', path: dir, reason: `cannot be read: ${(err as Error).message}` }], skipped };
  }
  if (!dirStat.isDirectory()) return { dir, hooks, refused: [{ name: '*', path: dir, reason: 'is not a directory' }], skipped };
  const names = fs.readdirSync(dir).sort(byteOrder);
  const dirProblem = unsafeOwnership(dirStat);
  if (dirProblem) {
    return { dir, hooks, refused: [{ name: '*', path: dir, reason: `the directory ${dir} ${dirProblem}: none of its hooks run` }], skipped: names };
  }
  for (const name of names) {
    const file = path.join(dir, name);
    if (!HOOK_NAME.test(name)) {
      skipped.push(name);
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      skipped.push(name); // a dangling symlink, or gone since the listing
      continue;
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) {
      skipped.push(name);
      continue;
    }
    const problem = unsafeOwnership(st);
    if (problem) {
      refused.push({ name, path: file, reason: `${file} ${problem}` });
      continue;
    }
    try {
      hooks.push({ name, path: file, hash: crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') });
    } catch (err) {
      refused.push({ name, path: file, reason: `${file} cannot be read: ${(err as Error).message}` });
    }
  }
  return { dir, hooks, refused, skipped };
}
