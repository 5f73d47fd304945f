// sliceid authorized-keys USER: print USER's key file (/etc/sliceid/authorized_keys/USER, kept by
// the daemon, src/writers/sshd-keys.ts) for sshd's AuthorizedKeysCommand. An unknown user, a name
// that is not a login, or no file yet: nothing, exit 0.
//
// sshd starts this once per login attempt (twice for a key login), scanners included, so it is
// CommonJS (no ES module loader to start) and loads nothing but node:fs, node:path and
// node:util: no SQLite, no config, no daemon modules, not even src/paths.ts (an ES module:
// requiring it costs 7% more CPU than `node -e 0`). /usr/bin/sliceid (packaging/sliceid.sh) runs
// this file directly; bin/sliceid.js and src/cli.ts dispatch to it before loading anything else.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: sliceid authorized-keys USER [--root DIR]\n';

/** Emulab's login grammar (the same as LOGIN in src/keys/accounts.ts; a test keeps them equal). */
export const KEY_FILE_LOGIN = /^[-\w]{1,64}$/;

/** The key directory under a root prefix, as src/paths.ts derives sshdKeysDir (a test keeps them equal). */
export function keysDir(root: string): string {
  return path.join(path.resolve(root), 'etc', 'sliceid', 'authorized_keys');
}

/** A key file larger than this is not ours: refused. */
export const MAX_KEY_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Read a key file the way sshd would want it read: not through a symlink, a regular file, owned
 * by root (or us) and not writable by group or others, in a directory that is the same.
 * Returns undefined when there is no such file; throws (naming the file and the rule) otherwise.
 */
export function readKeyFile(dir: string, login: string): Buffer | undefined {
  const file = path.join(dir, login);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw new Error(`${file}: refused: a symbolic link (the key files are regular files)`);
    throw new Error(`${file}: could not open: ${code ?? (err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${file}: refused: not a regular file`);
    unsafe(file, st);
    unsafe(dir, fs.lstatSync(dir));
    if (st.size > MAX_KEY_FILE_BYTES) throw new Error(`${file}: refused: larger than ${MAX_KEY_FILE_BYTES} bytes`);
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < st.size) {
      const got = fs.readSync(fd, buf, n, st.size - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

function unsafe(name: string, st: fs.Stats): void {
  const euid = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== euid) throw new Error(`${name}: refused: owned by uid ${st.uid}, not root`);
  if ((st.mode & 0o022) !== 0) throw new Error(`${name}: refused: writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
}

function writeOut(buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      process.stdout.write(buf.subarray(off));
      return;
    }
  }
}

/** The command: exit code 0 (keys printed, or none), 1 (a refused file), 2 (usage). */
export function run(args: string[]): number {
  let values: { root?: string | undefined; help?: boolean | undefined };
  let positionals: string[];
  try {
    // --config and --json are accepted like every command's, and change nothing here.
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { root: { type: 'string', default: '/' }, config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`sliceid: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [user, ...extra] = positionals;
  if (!user || extra.length) {
    process.stderr.write(`sliceid: authorized-keys takes exactly one user name\n${USAGE}`);
    return 2;
  }
  // Not a login (sshd passes whatever a client sent): no such user. Never echoed.
  if (!KEY_FILE_LOGIN.test(user)) return 0;
  try {
    const keys = readKeyFile(keysDir(values.root ?? '/'), user);
    if (keys?.length) writeOut(keys);
    return 0;
  } catch (err) {
    process.stderr.write(`sliceid: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The shape src/cli.ts expects of a command module. */
export async function main(args: string[]): Promise<number> {
  return run(args);
}

if (require.main === module) process.exitCode = run(process.argv.slice(2));
