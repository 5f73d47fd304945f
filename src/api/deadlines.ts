// Per-connection deadlines (slowloris, stalled bodies), armed only while a connection exists, so
// an idle daemon has no timer at all. One lazy timer per connection: a request only moves the
// deadline; the timer, when it fires early, re-arms itself for the rest.
import type net from 'node:net';
import type http from 'node:http';
import type { Limits } from './limits.js';

interface Tracked {
  deadline: number;
  timer: NodeJS.Timeout | undefined;
}

export interface ConnectionDeadlines {
  /** A new connection: its first request's headers must arrive within headersTimeoutMs. */
  connected(socket: net.Socket): void;
  /** Headers received: the request must complete within requestTimeoutMs; then keep-alive rules. */
  request(socket: net.Socket, res: http.ServerResponse): void;
}

export function connectionDeadlines(limits: Pick<Limits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>): ConnectionDeadlines {
  const tracked = new WeakMap<net.Socket, Tracked>();

  const arm = (socket: net.Socket, t: Tracked): void => {
    t.timer = setTimeout(() => {
      const left = t.deadline - Date.now();
      if (left > 0) return arm(socket, t);
      t.timer = undefined;
      socket.destroy();
    }, Math.max(1, t.deadline - Date.now()));
  };
  const moveTo = (socket: net.Socket, ms: number): void => {
    const t = tracked.get(socket);
    if (!t) return;
    t.deadline = ms > 0 ? Date.now() + ms : Infinity;
    if (t.deadline === Infinity) {
      // This limit is off: no timer at all.
      if (t.timer) clearTimeout(t.timer);
      t.timer = undefined;
    } else if (!t.timer) arm(socket, t);
  };

  return {
    connected(socket) {
      const t: Tracked = { deadline: Infinity, timer: undefined };
      tracked.set(socket, t);
      socket.once('close', () => {
        if (t.timer) clearTimeout(t.timer);
        t.timer = undefined;
      });
      moveTo(socket, limits.headersTimeoutMs);
    },
    request(socket, res) {
      moveTo(socket, limits.requestTimeoutMs);
      // Idle keep-alive is node's keepAliveTimeout; the next request's headers then get theirs.
      res.once('finish', () => moveTo(socket, limits.keepAliveTimeoutMs + limits.headersTimeoutMs));
    },
  };
}
