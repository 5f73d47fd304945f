// The ceiling: a plain node:http server that answers every POST with the exact bytes sliceid
// answered to GetSSHKeys (read once from a file), doing no parsing and no work per request
// beyond draining the request body.
//
//   node dist/bench/bare-http.js --body FILE [--port N]
//
// Listens on 127.0.0.1:N (0 picks a free port) and prints {"msg":"ready","port":N,"pid":P} on
// stdout once it accepts connections. SIGTERM or SIGINT stops it.
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { body: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (!values.body) {
  process.stderr.write('usage: bare-http --body FILE [--port N]\n');
  process.exit(2);
}
const body = fs.readFileSync(values.body);
const headers = { 'content-type': 'text/xml', 'content-length': String(body.length) };

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.listen(Number(values.port), '127.0.0.1', () => {
  const addr = server.address();
  const port = addr && typeof addr === 'object' ? addr.port : undefined;
  process.stdout.write(`${JSON.stringify({ msg: 'ready', port, pid: process.pid, bytes: body.length })}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
