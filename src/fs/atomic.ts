// Atomic file writes: temp file in the same directory, fsync, rename, fsync of the directory.
// A reader never sees a half-written file; a failed write leaves the previous file in place.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/**
 * Create a directory (and parents) and force its mode, even if it already existed. Touches
 * nothing when it is already right, so a read-only file system with a correct tree is fine.
 */
export function ensureDir(dir: string, mode: number): void {
  fs.mkdirSync(dir, { recursive: true, mode });
  if ((fs.statSync(dir).mode & 0o7777) !== mode) fs.chmodSync(dir, mode);
}

/** Temp files our atomic writes leave when killed mid-write: `.<name>.<12 hex>.tmp`. */
const TEMP_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Remove temp files a killed writer left in `dir`; returns their names. */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => TEMP_RE.test(n));
  } catch {
    return [];
  }
  for (const n of names) fs.rmSync(path.join(dir, n), { force: true });
  return names;
}

/** Read a file, or undefined when it does not exist. Other errors propagate. */
export function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Write `data` to `file` atomically with `mode`. Returns false (and touches nothing) when the
 * file already holds exactly these bytes with this mode, true when it was written.
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode: number): boolean {
  try {
    return writeAtomically(file, data, mode);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw Object.assign(new Error(`could not write ${file}: ${e.code ?? e.message}`), { code: e.code, cause: err });
  }
}

function writeAtomically(file: string, data: string | Buffer, mode: number): boolean {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const current = readIfExists(file);
  if (current && current.equals(bytes) && (fs.statSync(file).mode & 0o7777) === mode) return false;
  replaceFile(file, bytes, mode);
  fsyncDir(path.dirname(file));
  return true;
}

export interface ReplaceOptions {
  /** fsync the temp file before the rename (default true). */
  readonly fsync?: boolean;
  /** The temp file's name in the same directory (default: a random one). */
  readonly tempName?: string;
}

/**
 * Write `data` to a new temp file beside `file` (mode `mode`) and rename it over `file`: a reader
 * sees the old file or the new one, never a part. The temp file is removed on failure. The caller
 * fsyncs the directory (fsyncDir) once for one or many replaced files.
 */
export function replaceFile(file: string, data: string | Buffer, mode: number, opts: ReplaceOptions = {}): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, opts.tempName ?? `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fchmodSync(fd, mode);
    if (opts.fsync !== false) fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** fsync a directory (after renames in it); a file system that refuses it is left alone. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
