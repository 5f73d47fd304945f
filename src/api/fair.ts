// Fair connection slots. A listener holds at most `max` connections; one local user must not be
// able to take them all and starve the others (1030 idle connections, renewed as the header
// deadline closes them, cost the holder 0.7 s of CPU per 30 s). So a full table does not refuse
// the newcomer: it evicts the oldest *idle* connection (no request in progress: never sent one,
// or between keep-alive requests) of the heaviest holder. A caller that connects and sends its
// request at once is then always answered: what it displaces is somebody's idle connection.
// Near full, a holder past `perPeer` connections loses its oldest idle one for each new one.
//
// Who holds a connection:
// - loopback TCP: the uid owning the peer's socket, from /proc/net/tcp and /proc/net/tcp6 (the
//   row whose local port is our peer's port and whose remote port is ours). The tables are read
//   only when the listener is near full, at most once per OWNER_READ_MS; a connection not found
//   (yet) is a holder of its own.
// - the Unix socket: Node offers no SO_PEERCRED (getsockopt is not reachable without a native
//   addon), so every Unix-socket peer is one holder and fairness there is "oldest idle goes
//   first": a slot held idle is given up to a caller that has something to ask.
import fs from 'node:fs';
import type net from 'node:net';

/** Shortest time between two reads of /proc/net/tcp{,6} (a flood of connections reads it once). */
export const OWNER_READ_MS = 50;

interface Entry {
  readonly socket: net.Socket;
  readonly at: number;
  /** When it last became idle (its connection time, or the end of its last request). */
  idleSince: number;
  busy: boolean;
  holder: string | undefined;
  /** Tells apart connections whose owner is not known. */
  readonly id: number;
}

export interface FairSlotsOptions {
  /** Connections the listener holds at most. */
  readonly max: number;
  /** Connections one holder may keep once the listener is near full (three quarters). */
  readonly perPeer: number;
  /** TCP listener (owners looked up) or Unix socket (one holder). */
  readonly tcp: boolean;
  /** Owner uid by "peerPort>ourPort"; defaults to reading /proc/net/tcp{,6}. */
  readonly owners?: () => ReadonlyMap<string, number>;
  readonly now?: () => number;
  /** Told each eviction (for the log). */
  readonly onEvict?: (holder: string, why: 'full' | 'per-peer') => void;
}

export interface FairSlots {
  /** A new connection: admitted (after evicting another when full), or destroyed (false). */
  admit(socket: net.Socket): boolean;
  /** A request arrived on it. */
  busy(socket: net.Socket): void;
  /** Its response is done: idle until the next request. */
  idle(socket: net.Socket): void;
  /** Connections held, per holder (for tests). */
  holders(): Map<string, number>;
  readonly size: number;
}

/** "peerPort>ourPort" -> uid, from the kernel's TCP tables (each local socket is a row, with its owner). */
export function procTcpOwners(files: readonly string[] = ['/proc/net/tcp', '/proc/net/tcp6']): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    let at = text.indexOf('\n') + 1;
    while (at > 0 && at < text.length) {
      const end = text.indexOf('\n', at);
      const line = text.slice(at, end < 0 ? text.length : end);
      at = end < 0 ? text.length : end + 1;
      const f = line.trim().split(/\s+/);
      // sl local rem st queues tr retrnsmt uid ...
      const local = f[1];
      const remote = f[2];
      const uid = Number(f[7]);
      if (!local || !remote || !Number.isInteger(uid)) continue;
      const lp = parseInt(local.slice(local.indexOf(':') + 1), 16);
      const rp = parseInt(remote.slice(remote.indexOf(':') + 1), 16);
      out.set(`${lp}>${rp}`, uid);
    }
  }
  return out;
}

export function fairSlots(opts: FairSlotsOptions): FairSlots {
  const table = new Map<net.Socket, Entry>();
  const now = opts.now ?? Date.now;
  const owners = opts.owners ?? (() => procTcpOwners());
  const nearFull = Math.max(1, opts.max - Math.floor(opts.max / 4));
  let lastRead = -Infinity;
  let serial = 0;
  // Kept as connections come and go (a flood of connections admits each in constant time but for
  // the one scan that picks a victim): connections per holder, and those whose owner is unknown.
  const held = new Map<string, number>();
  let unknown = 0;

  const holderOf = (e: Entry): string => e.holder ?? (opts.tcp ? `unknown ${e.id}` : 'unix');
  const count = (h: string, by: number): void => {
    const n = (held.get(h) ?? 0) + by;
    if (n > 0) held.set(h, n);
    else held.delete(h);
  };
  const add = (e: Entry): void => {
    table.set(e.socket, e);
    count(holderOf(e), 1);
    if (e.holder === undefined) unknown++;
  };
  const remove = (e: Entry): void => {
    table.delete(e.socket);
    count(holderOf(e), -1);
    if (e.holder === undefined) unknown--;
  };
  const resolveOwners = (): void => {
    if (!opts.tcp || unknown === 0) return;
    const t = now();
    if (t - lastRead < OWNER_READ_MS) return;
    lastRead = t;
    const map = owners();
    for (const e of table.values()) {
      if (e.holder !== undefined) continue;
      const uid = map.get(`${e.socket.remotePort}>${e.socket.localPort}`);
      if (uid === undefined) continue;
      count(holderOf(e), -1);
      unknown--;
      e.holder = `uid ${uid}`;
      count(e.holder, 1);
    }
  };
  const evict = (e: Entry): void => {
    remove(e);
    e.socket.destroy();
  };
  /** The oldest idle connection of the heaviest holder that has one (of `only` when given). */
  const victim = (only?: string): Entry | undefined => {
    let best: Entry | undefined;
    let bestWeight = -1;
    for (const e of table.values()) {
      if (e.busy) continue;
      const h = holderOf(e);
      if (only !== undefined && h !== only) continue;
      const w = held.get(h)!;
      if (w > bestWeight || (w === bestWeight && e.idleSince < best!.idleSince)) {
        best = e;
        bestWeight = w;
      }
    }
    return best;
  };

  return {
    admit(socket) {
      const entry: Entry = { socket, at: now(), idleSince: now(), busy: false, holder: opts.tcp ? undefined : 'unix', id: ++serial };
      if (table.size >= opts.max) {
        resolveOwners();
        const v = victim();
        if (!v) {
          // Every slot is serving a request: the newcomer waits its turn by retrying.
          socket.destroy();
          return false;
        }
        opts.onEvict?.(holderOf(v), 'full');
        evict(v);
      }
      add(entry);
      socket.once('close', () => {
        if (table.get(socket) === entry) remove(entry);
      });
      if (table.size >= nearFull && opts.tcp) {
        resolveOwners();
        const h = holderOf(entry);
        if ((held.get(h) ?? 0) > opts.perPeer) {
          const v = victim(h);
          if (v) {
            opts.onEvict?.(h, 'per-peer');
            evict(v);
          }
        }
      }
      return !socket.destroyed;
    },
    busy(socket) {
      const e = table.get(socket);
      if (e) e.busy = true;
    },
    idle(socket) {
      const e = table.get(socket);
      if (!e) return;
      e.busy = false;
      e.idleSince = now();
    },
    holders: () => new Map(held),
    get size() {
      return table.size;
    },
  };
}
