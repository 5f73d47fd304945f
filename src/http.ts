// node:http, loaded as CommonJS. An ES module import of a builtin builds its namespace from every
// export, and node:http's exports include lazy getters (WebSocket, CloseEvent, MessageEvent) that
// load undici, and with it tls, http2, zlib and web streams: ~15 ms of every start for nothing
// sliceid uses (bench/README.md, start-up). require() returns the module object untouched.
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
export const createServer: typeof http.createServer = http.createServer;
export const request: typeof http.request = http.request;
