// Every bound the API server enforces, with defaults. A request that crosses one gets a 4xx or a
// fault, and the connection that holds resources too long is reaped.
import { defaultDecodeLimits, type DecodeLimits } from '../xmlrpc/types.js';

export interface Limits {
  /** Request body bytes, counted while reading (413 beyond). */
  readonly bodyBytes: number;
  /** Bytes of request line + headers (node:http maxHeaderSize; 431 beyond). */
  readonly headerBytes: number;
  /** Header lines per request. */
  readonly headerCount: number;
  /** Time to receive the complete headers (slowloris). */
  readonly headersTimeoutMs: number;
  /** Time to receive the complete request. */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept. */
  readonly keepAliveTimeoutMs: number;
  /** A socket with no traffic at all for this long is destroyed. */
  readonly idleTimeoutMs: number;
  /** Open connections per listener; more are refused at accept. */
  readonly maxConnections: number;
  /** Requests served on one keep-alive connection (0: no limit). */
  readonly maxRequestsPerSocket: number;
  /**
   * Beyond bodyBytes the rest of the body is read and discarded (so the client can read the 413)
   * for at most drainBytes more and drainMs, then the connection is closed.
   */
  readonly drainBytes: number;
  readonly drainMs: number;
  /** The per-request parse budget: depth, element count, text sizes. */
  readonly decode: DecodeLimits;
  /** Calls in one system.multicall. */
  readonly multicallMax: number;
  /** Reply bytes of one request; a system.multicall's members share them (a member beyond gets a fault). */
  readonly replyBytes: number;
  /**
   * Connection slots one peer (one uid on loopback TCP; the Unix socket's peers as one, see
   * fair.ts) may hold once the listener is near full; beyond, its oldest idle connection goes.
   */
  readonly perPeerConnections: number;
}

export const defaultLimits: Limits = {
  bodyBytes: 1024 * 1024,
  headerBytes: 16 * 1024,
  headerCount: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 1024,
  maxRequestsPerSocket: 0,
  drainBytes: 8 * 1024 * 1024,
  drainMs: 2_000,
  decode: defaultDecodeLimits,
  multicallMax: 256,
  replyBytes: 16 * 1024 * 1024,
  perPeerConnections: 256,
};

/** Defaults overridden by `partial`; refuses values that make no sense. */
export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  const limits: Limits = { ...defaultLimits, ...partial, decode: { ...defaultLimits.decode, ...partial.decode } };
  for (const [name, v] of Object.entries(limits)) {
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) {
      throw new Error(`API limit ${name} must be a non-negative integer, got ${v}`);
    }
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs && limits.requestTimeoutMs > 0) {
    throw new Error('API limit headersTimeoutMs must not exceed requestTimeoutMs');
  }
  return limits;
}
