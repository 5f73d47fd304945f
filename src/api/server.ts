// The NodeManager API server: a Koa app answering XML-RPC POSTs on / and /RPC2, listening on
// loopback TCP addresses and a Unix socket. Loopback only unless told otherwise; every request
// is bounded (body, headers, time, parse budget); errors become faults or 4xx, never a crash.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import { createServer } from '../builtins.js';
import net from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import { silentLogger, type Logger } from '../log.js';
import { encodeFault } from '../xmlrpc/encode.js';
import { FaultCode } from '../xmlrpc/fault.js';
import { XmlRpcDecodeError, type MethodCall } from '../xmlrpc/types.js';
import { connectionDeadlines } from './deadlines.js';
import { fairSlots } from './fair.js';
import { isLoopbackAddress, isLoopbackHost } from './loopback.js';

export { isLoopbackAddress, isLoopbackHost };
import { resolveLimits, type Limits } from './limits.js';
import { createNodeManager, type NodeManagerApi } from './nodemanager.js';
import { resumeOptimizer } from '../optimizer.js';
import { settleHttpShapes } from './shapes.js';
import type { NodeManagerData } from './types.js';

export type ApiAddress = { host: string; port: number } | { socket: string };

export interface ApiOptions {
  data: NodeManagerData;
  tcp: Array<{ host: string; port: number }>;
  /** Unix socket path (e.g. /tmp/nodemanager.api); made 0666, replaces what is there, left on close. */
  socket?: string;
  /** Listen on and accept connections from non-loopback addresses (off by default). */
  allowNonLoopback?: boolean;
  logger?: Logger;
  limits?: Partial<Limits>;
  /**
   * Listening servers made elsewhere and handed over (a shared host's guests, src/host/listen.ts):
   * served like the others from the moment this resolves; their connections are taken from the
   * handed server's own accept, so none waiting in its backlog is lost.
   */
  adopt?: Array<{ server: net.Server; address: ApiAddress }>;
}

export interface ApiServer {
  /** What is actually listening (port 0 resolved to the port the system chose). */
  readonly addresses: ApiAddress[];
  /** Stop listening and drop every connection; resolves within 2 s. */
  close(): Promise<void>;
  /** Build the memoized answers for the data as it is now (the daemon calls it after a refresh). */
  warm(): void;
  /** Serve a connection accepted elsewhere (one a hand-over accepted before it was done). */
  serve(socket: net.Socket, tcp: boolean): void;
}

const CLOSE_DEADLINE_MS = 2000;

// ---- loopback ---------------------------------------------------------------------------------

/**
 * The connection guard: a TCP peer that is not on loopback is dropped before a byte is read.
 * Unix-socket peers have no address and are always local.
 */
export function guardConnection(socket: Pick<net.Socket, 'remoteAddress' | 'destroy'>, tcp: boolean, logger: Logger): boolean {
  if (!tcp) return true;
  const peer = socket.remoteAddress;
  if (peer !== undefined && isLoopbackAddress(peer)) return true;
  logger.warn({ peer: peer ?? 'unknown' }, 'API: connection from a non-loopback address dropped');
  socket.destroy();
  return false;
}

// ---- the request handler ----------------------------------------------------------------------

class BodyTooLarge extends Error {
  constructor(readonly drained: boolean) {
    super('request body too large');
  }
}

/**
 * Read the request body, at most `limit` bytes. Beyond that, the rest is read and discarded (up to
 * `drainBytes` more, for at most `drainMs`) so the client can still read the 413, then rejected.
 */
function readBody(req: http.IncomingMessage, limit: number, drainBytes: number, drainMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (timer) clearTimeout(timer);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      if (!timer) {
        chunks.length = 0;
        timer = setTimeout(() => {
          done();
          reject(new BodyTooLarge(false));
        }, drainMs);
      }
      if (size > limit + drainBytes) {
        done();
        reject(new BodyTooLarge(false));
      }
    };
    const onEnd = (): void => {
      done();
      if (size > limit) reject(new BodyTooLarge(true));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onClose = (): void => {
      done();
      reject(new Error('client closed the connection before the request was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

class UnsupportedEncoding extends Error {}

/**
 * The request's Content-Encoding: none (or identity) gives the body as read; gzip is inflated to
 * at most `limit` bytes (more is BodyTooLarge, like an oversized body: a decompression bomb
 * stops at the limit); anything else is UnsupportedEncoding (415).
 */
function contentCoding(header: string | undefined): 'identity' | 'gzip' {
  const codings = (header ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'identity';
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip';
  throw new UnsupportedEncoding(`Content-Encoding ${JSON.stringify((header ?? '').slice(0, 64))} is not supported (send the body as is, or gzip)`);
}

/** node:zlib is loaded by the first gzip body, not at start (it costs ~0.6 MB resident). */
async function gunzip(body: Buffer, limit: number): Promise<Buffer> {
  const zlib = await import('node:zlib');
  return new Promise((resolve, reject) => {
    zlib.gunzip(body, { maxOutputLength: limit }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) return reject(new BodyTooLarge(true));
      reject(new Error(`the gzip body does not inflate: ${err.message}`));
    });
  });
}

function plain(ctx: Koa.Context, status: number, text: string): void {
  ctx.status = status;
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
  ctx.body = `${text}\n`;
}

function decodeFault(err: unknown): Buffer {
  if (err instanceof XmlRpcDecodeError) {
    const code = err.kind === 'structure' ? FaultCode.InvalidRequest : FaultCode.ParseError;
    const what = err.kind === 'structure' ? 'invalid XML-RPC request' : 'parse error';
    return encodeFault({ faultCode: code, faultString: `${what}: ${err.message}` });
  }
  return encodeFault({ faultCode: FaultCode.ParseError, faultString: `parse error: ${String(err)}` });
}

/**
 * The XML-RPC decoder (saxes and its character tables, ~1.3 MB resident) is loaded by the first
 * request rather than at start, like the optimizing compilers (src/optimizer.ts): a node whose API
 * is never called never holds it.
 */
type DecodeCall = typeof import('../xmlrpc/decode.js').decodeMethodCallSliced;
let decoder: Promise<DecodeCall> | undefined;
const loadDecoder = (): Promise<DecodeCall> => (decoder ??= import('../xmlrpc/decode.js').then((m) => m.decodeMethodCallSliced));

/** Bytes written in one turn of the event loop before yielding to other connections. */
const WRITE_SLICE_BYTES = 256 * 1024;

/**
 * Write a reply made of pieces (a multicall's members, shared memo bytes) without holding the
 * event loop: a slice at a time, yielding between slices, and waiting for the socket to drain
 * when the client reads slowly (the pieces are shared references, so a slow reader costs no copy).
 */
async function writeChunks(res: http.ServerResponse, chunks: readonly Buffer[]): Promise<void> {
  let slice = 0;
  for (const chunk of chunks) {
    if (res.destroyed) return;
    const flowing = res.write(chunk);
    slice += chunk.length;
    if (!flowing) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          res.off('drain', go);
          res.off('close', go);
          resolve();
        };
        res.on('drain', go);
        res.on('close', go);
      });
      slice = 0;
    } else if (slice >= WRITE_SLICE_BYTES) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      slice = 0;
    }
  }
  if (!res.destroyed) res.end();
}

/** The Koa app that answers XML-RPC calls from `data`. */
export function createApiApp(
  data: NodeManagerData,
  limits: Limits,
  logger: Logger,
  nm: NodeManagerApi = createNodeManager(data, { multicallMax: limits.multicallMax, replyBudget: limits.replyBytes, logger }),
): Koa {
  const app = new Koa();
  app.on('error', (err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'API: request failed'));
  const { drainBytes } = limits;
  // Clients repeat the very same bytes (GetSSHKeys() is always one document): remember the last
  // small argument-less call so a repeat costs a byte comparison instead of a parse.
  let last: { body: Buffer; call: MethodCall } | undefined;
  let decodeMethodCall: DecodeCall | undefined;
  // Large documents are parsed a slice per event-loop turn (decodeMethodCallSliced).
  const decode = async (body: Buffer, decodeMethodCall: DecodeCall): Promise<MethodCall> => {
    if (last && last.body.equals(body)) return last.call;
    const call = await decodeMethodCall(body, limits.decode);
    if (body.length <= 1024 && call.params.length === 0) last = { body: Buffer.from(body), call: Object.freeze({ ...call, params: Object.freeze([]) as unknown as [] }) };
    return call;
  };

  app.use(async (ctx) => {
    const url = ctx.url; // the common case without parsing the URL
    if (url !== '/' && url !== '/RPC2' && ctx.path !== '/' && ctx.path !== '/RPC2') {
      return plain(ctx, 404, 'Not Found: XML-RPC is served on / and /RPC2');
    }
    if (ctx.method !== 'POST') {
      ctx.set('Allow', 'POST');
      return plain(ctx, 405, 'Method Not Allowed: XML-RPC takes POST');
    }
    const req = ctx.req;
    const declared = req.headers['content-length'];
    let body: Buffer;
    try {
      if (declared !== undefined && Number(declared) > limits.bodyBytes + drainBytes) throw new BodyTooLarge(false);
      body = await readBody(req, limits.bodyBytes, drainBytes, limits.drainMs);
      // Checked once the body is read, so the client, done sending, reads the refusal.
      const coding = contentCoding(req.headers['content-encoding']);
      if (coding === 'gzip') body = await gunzip(body, limits.bodyBytes);
    } catch (err) {
      if (err instanceof UnsupportedEncoding) {
        ctx.set('Connection', 'close');
        return plain(ctx, 415, `Unsupported Media Type: ${err.message}`);
      }
      if (err instanceof BodyTooLarge) {
        logger.debug({ limit: limits.bodyBytes, drained: err.drained }, 'API: request body too large');
        ctx.set('Connection', 'close');
        return plain(ctx, 413, `Payload Too Large: the limit is ${limits.bodyBytes} bytes`);
      }
      logger.debug({ err: (err as Error).message }, 'API: request body not read');
      ctx.set('Connection', 'close');
      return plain(ctx, 400, (err as Error).message.startsWith('the gzip body') ? `Bad Request: ${(err as Error).message}` : 'Bad Request: incomplete body');
    }
    let reply: Buffer[];
    try {
      reply = nm.respondChunks(await decode(body, (decodeMethodCall ??= await loadDecoder())));
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'API: request refused');
      reply = [decodeFault(err)];
    }
    // The reply is complete bytes: write it directly rather than through Koa's body handling.
    ctx.respond = false;
    let length = 0;
    for (const c of reply) length += c.length;
    ctx.res.writeHead(200, ['Content-Type', 'text/xml', 'Content-Length', String(length)]);
    if (reply.length === 1) return void ctx.res.end(reply[0]);
    await writeChunks(ctx.res, reply);
  });
  return app;
}

// ---- listeners --------------------------------------------------------------------------------

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

/** Resolves true when something accepts connections on the Unix socket `file`. */
function socketInUse(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(file);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** How many times the socket is renamed into place before giving up (a directory keeps reappearing). */
const SOCKET_PLACE_TRIES = 5;

/**
 * What is at the socket path before sliceid takes it. Only a socket of sliceid's own uid that
 * answers is "another sliceid" (an error); one that does not answer is sliceid's own, left by a
 * stop or a crash, and is replaced silently. Anything else (not a socket, or another uid's) was
 * put there by someone else to squat the path: it is replaced with a warning naming its owner.
 */
async function inspectSocketPath(file: string, logger: Logger): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    throw err;
  }
  const ours = st.isSocket() && st.uid === process.geteuid?.();
  if (ours) {
    if (await socketInUse(file)) throw new Error(`API socket ${file} is in use by another process (is sliceid already running?)`);
    return;
  }
  const what = st.isSocket() ? 'a socket' : st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : st.isFIFO() ? 'a FIFO' : st.isFile() ? 'a file' : 'a special file';
  logger.warn({ socket: file, owner: st.uid, kind: what }, `API socket path ${file} was taken by uid ${st.uid} (${what}, not made by sliceid): replacing it`);
}

/**
 * Listen on the Unix socket `file` without a moment when someone else could take the path: bind in
 * a fresh root-only directory beside it, make it 0666, and rename it over `file` (in sticky /tmp
 * root may rename over anyone's file). A directory at the path is moved aside first (rename cannot
 * replace one). The server's own name is the temporary one, so closing it never removes `file`.
 */
async function listenOnSocketPath(server: net.Server, file: string, logger: Logger): Promise<void> {
  await inspectSocketPath(file, logger);
  const dir = path.dirname(file);
  const temp = fs.mkdtempSync(path.join(dir, '.sliceid-'));
  const bound = path.join(temp, 'api');
  try {
    fs.chmodSync(temp, 0o700);
    await listen(server, { path: bound, exclusive: true });
    fs.chmodSync(bound, 0o666);
    for (let i = 1; ; i++) {
      try {
        fs.renameSync(bound, file);
        break;
      } catch (err) {
        const code = errno(err);
        if ((code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') || i >= SOCKET_PLACE_TRIES) throw err;
        const aside = `${file}.squatted-${crypto.randomBytes(6).toString('hex')}`;
        fs.renameSync(file, aside);
        logger.warn({ socket: file, movedTo: aside }, `API socket path ${file} was a directory: moved aside`);
      }
    }
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

function hostOf(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export async function startApi(opts: ApiOptions): Promise<ApiServer> {
  const logger = opts.logger ?? silentLogger;
  const limits = resolveLimits(opts.limits);
  const allowNonLoopback = opts.allowNonLoopback ?? false;
  for (const { host, port } of opts.tcp) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`API port ${port} is not a TCP port (0-65535)`);
    if (!allowNonLoopback && !isLoopbackHost(hostOf(host))) {
      throw new Error(
        `API listen address ${JSON.stringify(host)} is not loopback: the NodeManager API serves this node only ` +
          '(127.0.0.0/8, ::1, localhost). Allow other addresses explicitly in the configuration if that is really wanted.',
      );
    }
  }

  const nm = createNodeManager(opts.data, { multicallMax: limits.multicallMax, replyBudget: limits.replyBytes, logger });
  const callback = createApiApp(opts.data, limits, logger, nm).callback();
  const deadlines = connectionDeadlines(limits);
  const servers: http.Server[] = [];
  const sockets = new Set<net.Socket>();
  const addresses: ApiAddress[] = [];
  const evictionLogged = new Set<string>();

  settleHttpShapes();
  const makeServer = (tcp: boolean): http.Server => {
    const server = createServer(
      {
        maxHeaderSize: limits.headerBytes,
        // node:http enforces these two with a timer that wakes the process every interval even
        // with no connection at all; deadlines.ts enforces them per connection instead.
        headersTimeout: 0,
        requestTimeout: 0,
        connectionsCheckingInterval: 2 ** 31 - 1,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        requireHostHeader: false,
        noDelay: true,
      },
      callback,
    );
    // Slots are shared fairly (fair.ts): a full listener evicts the oldest idle connection of
    // the heaviest holder rather than refusing the newcomer (node's maxConnections would).
    const slots = fairSlots({
      max: limits.maxConnections,
      perPeer: limits.perPeerConnections,
      tcp,
      onEvict: (who, why) => {
        const holder = who.startsWith('unknown') ? 'unknown' : who;
        if (!evictionLogged.has(holder) && evictionLogged.size < 1000) {
          evictionLogged.add(holder);
          logger.warn({ holder, why }, 'API: connection slots full; closing idle connections of the heaviest holder (logged once per holder)');
        }
      },
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      deadlines.request(req.socket, res);
      slots.busy(req.socket);
      res.once('close', () => slots.idle(req.socket));
    });
    server.once('request', resumeOptimizer);
    server.maxHeadersCount = limits.headerCount;
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
    server.on('connection', (socket: net.Socket) => {
      if (!allowNonLoopback && !guardConnection(socket, tcp, logger)) return;
      if (!slots.admit(socket)) return;
      deadlines.connected(socket);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      logger.debug({ err: err.code ?? err.message }, 'API: bad HTTP from client');
      const inFlight = (socket as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
      if (!socket.writable || err.code === 'ECONNRESET' || inFlight?.headersSent) return void socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
    });
    server.on('error', (err) => logger.error({ err: err.message }, 'API: listener error'));
    servers.push(server);
    return server;
  };

  const adopted: net.Server[] = [];
  // A connection accepted elsewhere (a handed-over listener, a stray): what the HTTP server's own
  // listener does on accepting, Nagle off (noDelay, as the servers above have it), then served.
  const enter = (server: http.Server, socket: net.Socket, tcp: boolean): void => {
    if (tcp) socket.setNoDelay(true);
    server.emit('connection', socket);
  };
  const httpFor = new Map<boolean, http.Server>();
  const closeAll = async (): Promise<void> => {
    for (const s of adopted) s.close();
    const closing = servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())));
    for (const s of servers) s.closeAllConnections();
    for (const s of sockets) s.destroy();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_DEADLINE_MS)));
    const outcome = await Promise.race([Promise.all(closing), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') logger.warn('API: listeners still closing after 2 s; giving up waiting');
    // The socket file stays: root's, in sticky /tmp, nobody else can take the path while sliceid
    // is stopped (clients get "connection refused"); the next start replaces it.
  };

  try {
    let sharedPort: number | undefined;
    for (const { host: rawHost, port } of opts.tcp) {
      const host = hostOf(rawHost);
      const server = makeServer(true);
      try {
        // Port 0 on several hosts: try the port the first one got, so one port serves them all.
        if (port === 0 && sharedPort !== undefined) {
          try {
            await listen(server, { host, port: sharedPort, exclusive: true });
          } catch (err) {
            if (errno(err) !== 'EADDRINUSE') throw err;
            await listen(server, { host, port: 0, exclusive: true });
          }
        } else {
          await listen(server, { host, port, exclusive: true });
        }
      } catch (err) {
        const code = errno(err);
        if (isLoopbackAddress(host) && net.isIPv6(host) && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          logger.warn({ host, port, err: code }, 'API: no IPv6 loopback on this host; not listening on ::1');
          servers.splice(servers.indexOf(server), 1);
          continue;
        }
        throw new Error(`API cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
      }
      const bound = server.address() as net.AddressInfo;
      if (port === 0) sharedPort ??= bound.port;
      addresses.push({ host: bound.address, port: bound.port });
      logger.info({ host: bound.address, port: bound.port }, 'API listening');
    }
    if (opts.socket) {
      const file = opts.socket;
      const server = makeServer(false);
      try {
        await listenOnSocketPath(server, file, logger);
      } catch (err) {
        if ((err as Error).message.includes('in use by another process')) throw err;
        throw new Error(`API cannot listen on ${file}: ${(err as Error).message}`, { cause: err });
      }
      addresses.push({ socket: file });
      logger.info({ socket: file }, 'API listening');
    }
    for (const { server: handed, address } of opts.adopt ?? []) {
      const tcp = !('socket' in address);
      let server = httpFor.get(tcp);
      if (!server) httpFor.set(tcp, (server = makeServer(tcp)));
      const target = server;
      handed.maxConnections = limits.maxConnections;
      handed.on('connection', (socket: net.Socket) => enter(target, socket, tcp));
      handed.on('error', (err) => logger.error({ err: err.message }, 'API: listener error'));
      adopted.push(handed);
      addresses.push(address);
    }
    if (addresses.length === 0) throw new Error('API has nowhere to listen: no TCP address could be bound and no socket was given');
  } catch (err) {
    await closeAll();
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    addresses,
    close: () => (closed ??= closeAll()),
    warm: () => nm.warm(),
    serve: (socket, tcp) => {
      let server = httpFor.get(tcp);
      if (!server) httpFor.set(tcp, (server = makeServer(tcp)));
      if (closed) socket.destroy();
      else enter(server, socket, tcp);
    },
  };
}
