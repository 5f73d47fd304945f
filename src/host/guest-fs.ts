// A guest's files, reached from the host without ever leaving the guest's tree. The guest's root
// user is hostile: every path is walked one component at a time from a directory fd of the
// guest's root (/proc/<pid>/root: its root in its own mount namespace, or a configured root),
// each component opened O_NOFOLLOW relative to the directory before it (Node has no openat, so
// through /proc/self/fd/<fd>/<name>, which the kernel resolves in that directory). A symlink is
// read and resolved by hand against the guest's root, never the host's (bounded hops), as
// openat2(RESOLVE_IN_ROOT) would. Reads are bounded and never block on a FIFO or a device
// (O_NONBLOCK, regular files only); writes are atomic (temp file + rename in the resolved directory).
import fs from 'node:fs';
import crypto from 'node:crypto';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = fs.constants;
const MAX_HOPS = 40;
const MAX_COMPONENTS = 256;
/** Default bound of a file read from a guest. */
export const MAX_READ_BYTES = 1 << 20;

export class GuestPathError extends Error {
  override readonly name = 'GuestPathError';
  constructor(
    readonly guestPath: string,
    readonly code: string,
    why: string,
  ) {
    super(`${guestPath} (in the guest): ${why}`);
  }
}

const fdPath = (fd: number, name?: string): string => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);
const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

export interface GuestFs {
  /** The file's bytes; undefined when it does not exist. Throws GuestPathError on anything unsafe or too big. */
  read(guestPath: string, maxBytes?: number): Buffer | undefined;
  /** The entries of a directory (names only); [] when it does not exist. */
  list(guestPath: string): string[];
  /** Write atomically (temp + rename inside the resolved directory); the parents are made (0755, root). */
  write(guestPath: string, data: string | Buffer, mode: number, owner?: { uid: number; gid: number }): boolean;
  /** Make the directory and its parents; ensures the last one's mode. */
  mkdir(guestPath: string, mode: number): void;
  /** Remove a file (never follows a symlink); false when it was not there. */
  unlink(guestPath: string): boolean;
  /** A new descriptor of the guest's root (O_DIRECTORY; the caller closes it). */
  openRoot(): number;
  /** Hold the resolved directory open and call fn with a host path naming it (/proc/self/fd/N). */
  withDir<T>(guestPath: string, create: boolean, fn: (hostDir: string) => T): T;
  close(): void;
}

/** Open a guest's root: a directory, never through a symlink of the guest. */
export function openGuestRoot(rootOnHost: string): GuestFs {
  const rootFd = fs.openSync(rootOnHost, O_RDONLY | O_DIRECTORY);
  return new Walker(rootFd);
}

class Walker implements GuestFs {
  constructor(private rootFd: number) {}

  close(): void {
    if (this.rootFd >= 0) fs.closeSync(this.rootFd);
    this.rootFd = -1;
  }

  /** Split a guest path, '.' dropped, '..' kept for the walk. */
  private parts(p: string): string[] {
    const out = p.split('/').filter((c) => c !== '' && c !== '.');
    if (out.length > MAX_COMPONENTS) throw new GuestPathError(p, 'ENAMETOOLONG', 'too many components');
    return out;
  }

  /**
   * Resolve the directory that holds the last component of `p`, inside the guest. Returns an
   * open directory fd (the caller closes it) and the last name. `create`: make missing directories.
   */
  private resolveParent(p: string, create: boolean): { dirFd: number; name: string } {
    let pending = this.parts(p);
    if (pending.length === 0) throw new GuestPathError(p, 'EISDIR', 'names the root itself');
    let hops = 0;
    // The stack of directories walked so far (names), reopened from the root after a symlink.
    let stack: string[] = [];
    let fd = this.dupRoot();
    try {
      for (;;) {
        const name = pending.shift()!;
        if (pending.length === 0) {
          if (name === '..') throw new GuestPathError(p, 'EINVAL', 'ends with ..');
          const result = { dirFd: fd, name };
          fd = -1;
          return result;
        }
        if (name === '..') {
          stack = stack.slice(0, -1);
          fs.closeSync(fd);
          fd = -1;
          fd = this.openStack(stack, p);
          continue;
        }
        let next: number;
        try {
          next = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        } catch (err) {
          const code = errno(err);
          if (code === 'ENOENT' && create) {
            try {
              fs.mkdirSync(fdPath(fd, name), 0o755);
            } catch (e) {
              if (errno(e) !== 'EEXIST') throw new GuestPathError(p, errno(e), `cannot make ${name}: ${errno(e)}`);
            }
            pending.unshift(name);
            continue;
          }
          if (code === 'ELOOP' || code === 'ENOTDIR') {
            const link = this.readLink(fd, name);
            if (link === undefined) throw new GuestPathError(p, 'ENOTDIR', `${name} is not a directory`);
            if (++hops > MAX_HOPS) throw new GuestPathError(p, 'ELOOP', 'too many symlinks');
            // Resolve the link against the guest's root: absolute from the root, relative from here.
            const target = this.parts(link);
            if (link.startsWith('/')) stack = [];
            pending = [...target, ...pending];
            if (pending.length > MAX_COMPONENTS) throw new GuestPathError(p, 'ENAMETOOLONG', 'too many components');
            fs.closeSync(fd);
            fd = -1;
            fd = this.openStack(stack, p);
            continue;
          }
          throw new GuestPathError(p, code, `${name}: ${code}`);
        }
        fs.closeSync(fd);
        fd = next;
        stack.push(name);
      }
    } catch (err) {
      if (fd >= 0) fs.closeSync(fd);
      throw err;
    }
  }

  openRoot(): number {
    return this.dupRoot();
  }

  private dupRoot(): number {
    if (this.rootFd < 0) throw new Error('guest root closed');
    return fs.openSync(fdPath(this.rootFd), O_RDONLY | O_DIRECTORY);
  }

  /** Reopen a walked stack of real directories (no symlinks in it) from the root. */
  private openStack(stack: string[], p: string): number {
    let fd = this.dupRoot();
    for (const name of stack) {
      let next: number;
      try {
        next = fs.openSync(fdPath(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (err) {
        fs.closeSync(fd);
        throw new GuestPathError(p, errno(err), `${name} changed during the walk`);
      }
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  }

  private readLink(dirFd: number, name: string): string | undefined {
    try {
      return fs.readlinkSync(fdPath(dirFd, name));
    } catch {
      return undefined;
    }
  }

  /** Resolve a whole path to an open fd of the final object (symlinks at the end resolved too). */
  private openFinal(p: string, flags: number): number | undefined {
    let current = p;
    for (let hops = 0; hops <= MAX_HOPS; hops++) {
      let parent: { dirFd: number; name: string };
      try {
        parent = this.resolveParent(current, false);
      } catch (err) {
        if (err instanceof GuestPathError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
        throw err;
      }
      try {
        return fs.openSync(fdPath(parent.dirFd, parent.name), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT') return undefined;
        // A symlink opened O_NOFOLLOW fails ELOOP, or ENOTDIR when O_DIRECTORY is asked too.
        if (code !== 'ELOOP' && code !== 'ENOTDIR') throw new GuestPathError(p, code, code);
        const link = this.readLink(parent.dirFd, parent.name);
        if (link === undefined) throw new GuestPathError(p, code, code === 'ELOOP' ? 'unreadable symlink' : 'not a directory');
        // The link's target, in the guest: absolute from its root, else beside the link.
        const dir = this.parts(current).slice(0, -1);
        current = link.startsWith('/') ? link : `/${[...dir, link].join('/')}`;
      } finally {
        fs.closeSync(parent.dirFd);
      }
    }
    throw new GuestPathError(p, 'ELOOP', 'too many symlinks');
  }

  read(guestPath: string, maxBytes = MAX_READ_BYTES): Buffer | undefined {
    const fd = this.openFinal(guestPath, O_RDONLY);
    if (fd === undefined) return undefined;
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) return undefined;
      if (!st.isFile()) throw new GuestPathError(guestPath, 'EINVAL', 'not a regular file (a FIFO, socket or device is never read)');
      if (st.size > maxBytes) throw new GuestPathError(guestPath, 'EFBIG', `${st.size} bytes, more than the ${maxBytes} read from a guest`);
      // Sized by the file (one byte more shows growth; a buffer of the bound for every small
      // file made the glibc heap of a host with 50 guests grow by 30 MB at each refresh).
      let buf = Buffer.allocUnsafe(st.size + 1);
      let n = 0;
      for (;;) {
        if (n === buf.length) {
          const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, buf.length * 2));
          buf.copy(bigger, 0, 0, n);
          buf = bigger;
        }
        const got = fs.readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (n > maxBytes) throw new GuestPathError(guestPath, 'EFBIG', `more than the ${maxBytes} bytes read from a guest`);
      }
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  }

  list(guestPath: string): string[] {
    const fd = guestPath === '/' ? this.dupRoot() : this.openFinal(guestPath, O_RDONLY | O_DIRECTORY);
    if (fd === undefined) return [];
    try {
      return fs.readdirSync(fdPath(fd)).slice(0, 10000);
    } catch {
      return [];
    } finally {
      fs.closeSync(fd);
    }
  }

  withDir<T>(guestPath: string, create: boolean, fn: (hostDir: string) => T): T {
    const { dirFd, name } = this.resolveParent(`${guestPath}/.`.replace(/\/\.$/, '/x'), create);
    // resolveParent walked every component but the placeholder: dirFd is the directory itself.
    void name;
    try {
      return fn(fdPath(dirFd));
    } finally {
      fs.closeSync(dirFd);
    }
  }

  mkdir(guestPath: string, mode: number): void {
    this.withDir(guestPath, true, (dir) => {
      const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
      try {
        if ((fs.fstatSync(fd).mode & 0o7777) !== mode) fs.fchmodSync(fd, mode);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  write(guestPath: string, data: string | Buffer, mode: number, owner?: { uid: number; gid: number }): boolean {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const { dirFd, name } = this.resolveParent(guestPath, true);
    try {
      const target = fdPath(dirFd, name);
      // Unchanged: nothing written (a regular file of ours only; anything else is replaced).
      try {
        const fd = fs.openSync(target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        try {
          const st = fs.fstatSync(fd);
          if (st.isFile() && st.size === bytes.length && (st.mode & 0o7777) === mode && (!owner || (st.uid === owner.uid && st.gid === owner.gid))) {
            if (fs.readFileSync(fd).equals(bytes)) return false;
          }
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        // missing, a symlink (ELOOP) or unreadable: replaced below
      }
      const temp = fdPath(dirFd, `.${name}.sliceid-${crypto.randomBytes(6).toString('hex')}`);
      const fd = fs.openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        fs.writeSync(fd, bytes);
        if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
        fs.fchmodSync(fd, mode);
        fs.fsyncSync(fd);
      } catch (err) {
        fs.closeSync(fd);
        fs.rmSync(temp, { force: true });
        throw err;
      }
      fs.closeSync(fd);
      try {
        fs.renameSync(temp, target);
      } catch (err) {
        fs.rmSync(temp, { force: true });
        throw new GuestPathError(guestPath, errno(err), `cannot replace it: ${errno(err)}`);
      }
      return true;
    } finally {
      fs.closeSync(dirFd);
    }
  }

  unlink(guestPath: string): boolean {
    let parent: { dirFd: number; name: string };
    try {
      parent = this.resolveParent(guestPath, false);
    } catch (err) {
      if (err instanceof GuestPathError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return false;
      throw err;
    }
    try {
      fs.unlinkSync(fdPath(parent.dirFd, parent.name));
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw new GuestPathError(guestPath, errno(err), errno(err));
    } finally {
      fs.closeSync(parent.dirFd);
    }
  }
}
