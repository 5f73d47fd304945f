// Builtins loaded as CommonJS. An ES module import of a builtin builds its namespace from every
// export, and on Node 22 (the runtime the packages carry) some exports are lazy getters that load
// much more: node:http's WebSocket, CloseEvent and MessageEvent load undici, and with it tls,
// http2, zlib and web streams (~40 ms and ~6 MB at every start); node:util's load worker_threads
// and the assert diff (~7 ms). require() returns the module object untouched, and nothing is
// loaded that sliceid does not use (bench/README.md, start-up; test/rpm checks the module list).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');
const util = require('node:util') as typeof import('node:util');

export const createServer: typeof http.createServer = http.createServer;
export const request: typeof http.request = http.request;
export const IncomingMessage: typeof http.IncomingMessage = http.IncomingMessage;
export const ServerResponse: typeof http.ServerResponse = http.ServerResponse;
export const parseArgs: typeof util.parseArgs = util.parseArgs;
