// The HTTP side of the API: paths and methods, hostile requests, limits, listeners, close.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { pino } from 'pino';
import { guardConnection, isLoopbackAddress, isLoopbackHost, startApi } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import { decodeMethodResponse } from '../../src/xmlrpc/decode.js';
import { encodeMethodCall } from '../../src/xmlrpc/encode.js';
import { goodTrees, tempDir } from '../helpers/fixtures.js';
import { GET_SSH_KEYS, closed, fakeFromExpected, rawExchange, request, startTestApi, type Target } from './helpers.js';

const expected = goodTrees().find((x) => Object.keys(x.expected.GetSSHKeys).length > 0)!.expected;
const data = () => fakeFromExpected(expected);

async function assertStillServes(t: import('ava').ExecutionContext, target: Target): Promise<void> {
  const reply = await request(target, { body: GET_SSH_KEYS });
  t.is(reply.status, 200);
  t.deepEqual(decodeMethodResponse(reply.body), { params: [expected.GetSSHKeys] }, 'the next normal call succeeds');
}

function faultOf(body: string): { faultCode: number; faultString: string } {
  const r = decodeMethodResponse(body);
  if (!('fault' in r)) throw new Error(`not a fault: ${body}`);
  return r.fault;
}

// ---- paths, methods, protocol -----------------------------------------------------------------

test('POST / and /RPC2 answer text/xml; other paths 404, other methods 405 with Allow', async (t) => {
  const { port } = await startTestApi(t, data());
  for (const p of ['/', '/RPC2', '/?q=1']) {
    const r = await request({ port }, { path: p, body: GET_SSH_KEYS });
    t.is(r.status, 200, p);
    t.is(r.headers['content-type'], 'text/xml', p);
    t.deepEqual(decodeMethodResponse(r.body), { params: [expected.GetSSHKeys] });
  }
  for (const p of ['/x', '/RPC2/', '/rpc2']) t.is((await request({ port }, { path: p, body: GET_SSH_KEYS })).status, 404, p);
  for (const m of ['GET', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await request({ port }, { method: m, path: '/RPC2' });
    t.is(r.status, 405, m);
    t.is(r.headers['allow'], 'POST');
  }
  t.is((await request({ port }, { method: 'HEAD' })).status, 405);
  t.is((await request({ port }, { method: 'GET', path: '/nope' })).status, 404);
});

test.serial('a handed-over listener (host mode) and a connection given to serve(): answered, with Nagle off as on the API\'s own listeners', async (t) => {
  // The local ports of the sockets that got setNoDelay(true).
  const noDelay: number[] = [];
  const original = net.Socket.prototype.setNoDelay;
  net.Socket.prototype.setNoDelay = function (this: net.Socket, on?: boolean) {
    if (on !== false && this.localPort !== undefined) noDelay.push(this.localPort);
    return original.call(this, on);
  };
  t.teardown(() => void (net.Socket.prototype.setNoDelay = original));
  const listening = async (onConnection?: (s: net.Socket) => void): Promise<[net.Server, number]> => {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => void server.close());
    return [server, (server.address() as net.AddressInfo).port];
  };
  const [handed, port] = await listening();
  const api = await startApi({ data: data(), tcp: [], adopt: [{ server: handed, address: { host: '127.0.0.1', port } }], logger: silentLogger });
  t.teardown(() => api.close());
  const reply = await request({ port }, { body: GET_SSH_KEYS });
  t.is(reply.status, 200);
  t.deepEqual(decodeMethodResponse(reply.body), { params: [expected.GetSSHKeys] });
  t.is(noDelay.filter((p) => p === port).length, 1, 'the accepted socket had Nagle turned off');
  // A connection accepted elsewhere and given to serve(), as the host's stray connections are.
  const [, otherPort] = await listening((socket) => api.serve(socket, true));
  const again = await request({ port: otherPort }, { body: GET_SSH_KEYS });
  t.is(again.status, 200);
  t.is(noDelay.filter((p) => p === otherPort).length, 1);
});

test('HTTP/1.0 without Host over TCP is answered and the connection closed', async (t) => {
  const { port } = await startTestApi(t, data());
  const reply = await rawExchange({ port }, `POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: ${GET_SSH_KEYS.length}\r\n\r\n${GET_SSH_KEYS}`);
  const [head, body] = reply.split('\r\n\r\n', 2) as [string, string];
  t.regex(head, /^HTTP\/1\.[01] 200 /);
  t.deepEqual(decodeMethodResponse(body), { params: [expected.GetSSHKeys] });
});

test('keep-alive: many calls on one connection; chunked request bodies work', async (t) => {
  const { port } = await startTestApi(t, data());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const sockets = new Set<net.Socket>();
  for (let i = 0; i < 200; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'content-length': GET_SSH_KEYS.length } }, (res) => {
        sockets.add(res.socket);
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end(GET_SSH_KEYS);
    });
    t.deepEqual(decodeMethodResponse(body), { params: [expected.GetSSHKeys] });
  }
  t.is(sockets.size, 1, 'one connection served them all');
  const chunked = await request({ port }, { body: encodeMethodCall('GetXIDs', []), chunked: true });
  t.deepEqual(decodeMethodResponse(chunked.body), { params: [{ [expected.slicename]: 20001 }] });
});

// ---- content encodings and character encodings ------------------------------------------------

test('Content-Encoding: gzip is inflated (TCP and the socket); a decompression bomb is 413, a broken gzip 400, other encodings 415', async (t) => {
  const { port, socket } = await startTestApi(t, data());
  const bomb = zlib.gzipSync(Buffer.concat([Buffer.from(encodeMethodCall('GetSSHKeys', [])), Buffer.alloc(64 * 1024 * 1024, 0x20)]));
  t.true(bomb.length < 1024 * 1024, `the bomb is ${bomb.length} bytes compressed, under the body limit`);
  for (const target of [{ port }, { socketPath: socket }] as Target[]) {
    const where = 'port' in target ? 'tcp' : 'unix';
    for (const coding of ['gzip', 'x-gzip', 'GZIP', 'identity, gzip']) {
      const r = await request(target, { body: zlib.gzipSync(GET_SSH_KEYS), headers: { 'content-encoding': coding } });
      t.is(r.status, 200, `${where} ${coding}`);
      t.deepEqual(decodeMethodResponse(r.body), { params: [expected.GetSSHKeys] }, `${where} ${coding}`);
    }
    const plainBody = await request(target, { body: GET_SSH_KEYS, headers: { 'content-encoding': 'identity' } });
    t.deepEqual(decodeMethodResponse(plainBody.body), { params: [expected.GetSSHKeys] }, `${where} identity`);
    const started = Date.now();
    const bombed = await request(target, { body: bomb, headers: { 'content-encoding': 'gzip' } });
    t.is(bombed.status, 413, `${where} bomb`);
    t.regex(bombed.body, /^Payload Too Large: the limit is 1048576 bytes/);
    t.log(`${where}: a ${bomb.length}-byte gzip of 64 MiB refused in ${Date.now() - started} ms`);
    const broken = await request(target, { body: zlib.gzipSync(GET_SSH_KEYS).subarray(0, 30), headers: { 'content-encoding': 'gzip' } });
    t.is(broken.status, 400, `${where} cut-off gzip`);
    t.regex(broken.body, /^Bad Request: the gzip body does not inflate/);
    for (const coding of ['deflate', 'br', 'compress', 'gzip, gzip', 'zstd']) {
      const r = await request(target, { body: GET_SSH_KEYS, headers: { 'content-encoding': coding } });
      t.is(r.status, 415, `${where} ${coding}`);
      t.is(r.body, `Unsupported Media Type: Content-Encoding ${JSON.stringify(coding)} is not supported (send the body as is, or gzip)\n`);
    }
    await assertStillServes(t, target);
  }
});

test('documents in UTF-16 (BOM or declaration) and UTF-8 with a BOM are read, over TCP and the socket; an unsupported encoding is a clean fault', async (t) => {
  const { port, socket } = await startTestApi(t, data());
  const doc = (decl: string): string => `<?xml version="1.0"${decl}?>\n<methodCall>\n<methodName>GetSSHKeys</methodName>\n<params>\n</params>\n</methodCall>\n`;
  const le = (text: string): Buffer => Buffer.from(text, 'utf16le');
  const bodies: Array<[string, Buffer]> = [
    ['UTF-16LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), le(doc(' encoding="UTF-16"'))])],
    ['UTF-16BE with BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), le(doc(' encoding="UTF-16"')).swap16()])],
    ['UTF-16LE declared, no BOM', le(doc(' encoding="UTF-16LE"'))],
    ['UTF-8 with BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc(''))])],
  ];
  for (const target of [{ port }, { socketPath: socket }] as Target[]) {
    const where = 'port' in target ? 'tcp' : 'unix';
    for (const [what, body] of bodies) {
      const r = await request(target, { body });
      t.is(r.status, 200);
      t.deepEqual(decodeMethodResponse(r.body), { params: [expected.GetSSHKeys] }, `${where}: ${what}`);
    }
    const unsupported = await request(target, { body: doc(' encoding="EBCDIC-US"') });
    t.is(unsupported.status, 200);
    t.deepEqual(faultOf(unsupported.body), { faultCode: -32700, faultString: 'parse error: unsupported encoding "ebcdic-us" (supported: UTF-8, US-ASCII, ISO-8859-1, UTF-16)' });
    const lying = await request(target, { body: doc(' encoding="UTF-16"') });
    t.deepEqual(faultOf(lying.body), { faultCode: -32700, faultString: 'parse error: the XML declaration names "utf-16" but the body is not UTF-16 (no byte order mark, no UTF-16 "<?")' });
  }
});

// ---- hostile requests -------------------------------------------------------------------------

test('malformed XML, not XML-RPC, garbage bytes: a fault, and the next call succeeds', async (t) => {
  const { port } = await startTestApi(t, data());
  const cases: Array<[string | Buffer, number, RegExp]> = [
    ['<methodCall><methodName>GetSSHKeys</methodName', -32700, /^parse error: not well-formed XML/],
    ['', -32700, /root element/],
    [Buffer.from([0xff, 0x00, 0x13, 0x37]), -32700, /UTF-8/],
    ['<methodCall><params/></methodCall>', -32600, /^invalid XML-RPC request: <methodCall> has no method name/],
    ['<html><body>hi</body></html>', -32600, /not <methodCall>/],
    ['{"json": true}', -32700, /not well-formed/],
  ];
  for (const [body, code, text] of cases) {
    const r = await request({ port }, { body });
    t.is(r.status, 200);
    const f = faultOf(r.body);
    t.is(f.faultCode, code, String(body));
    t.regex(f.faultString, text);
  }
  await assertStillServes(t, { port });
});

test('a billion-laughs DTD is refused at its DOCTYPE, quickly', async (t) => {
  const { port } = await startTestApi(t, data());
  let dtd = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">';
  for (let i = 1; i <= 9; i++) dtd += `<!ENTITY lol${i} "${`&lol${i - 1 || ''};`.repeat(10)}">`;
  const started = Date.now();
  const r = await request({ port }, { body: `${dtd}]><methodCall><methodName>&lol9;</methodName></methodCall>` });
  t.true(Date.now() - started < 1000);
  t.deepEqual(faultOf(r.body), { faultCode: -32700, faultString: 'parse error: DOCTYPE is not allowed in XML-RPC' });
  const xxe = await request({ port }, { body: '<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><methodCall><methodName>&x;</methodName></methodCall>' });
  t.is(faultOf(xxe.body).faultCode, -32700);
  await assertStillServes(t, { port });
});

test('20,000-deep nesting is refused at depth 64, quickly', async (t) => {
  const { port } = await startTestApi(t, data());
  const body = `<methodCall><methodName>GetSSHKeys</methodName><params><param>${'<value><array><data>'.repeat(20000)}${'</data></array></value>'.repeat(20000)}</param></params></methodCall>`;
  const started = Date.now();
  const r = await request({ port }, { body });
  t.true(Date.now() - started < 1000, `${Date.now() - started} ms`);
  t.deepEqual(faultOf(r.body), { faultCode: -32700, faultString: 'parse error: elements nested deeper than 64' });
  await assertStillServes(t, { port });
});

test('a body over 1 MiB gets 413 (declared, chunked, or far too large), and the next call succeeds', async (t) => {
  const { port, socket } = await startTestApi(t, data());
  const big = encodeMethodCall('GetSSHKeys', ['x'.repeat(2 * 1024 * 1024)]);
  for (const target of [{ port }, { socketPath: socket }] as Target[]) {
    const started = Date.now();
    const declared = await request(target, { body: big });
    t.is(declared.status, 413);
    t.is(declared.headers['connection'], 'close');
    t.is((await request(target, { body: big, chunked: true })).status, 413);
    t.true(Date.now() - started < 2000, `${Date.now() - started} ms`);
    await assertStillServes(t, target);
  }
  // Announcing 100 MiB: answered at once, without waiting for (or reading) the body.
  const reply = await rawExchange({ port }, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n<methodCall>`);
  t.regex(reply, /^HTTP\/1\.1 413 /);
  // Just under the limit is fine.
  const fits = encodeMethodCall('GetSSHKeys', ['x'.repeat(1024 * 1024 - 200)]);
  t.is(faultOf((await request({ port }, { body: fits })).body).faultCode, 101);
});

test('oversized headers get 431; a slow client (slowloris) is cut off at the headers timeout', async (t) => {
  const { port } = await startTestApi(t, data(), { limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
  const huge = await rawExchange({ port }, `POST / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\nContent-Length: 0\r\n\r\n`);
  t.regex(huge, /^HTTP\/1\.1 431 /);
  const slow = net.connect(port, '127.0.0.1');
  await new Promise((r) => slow.once('connect', r));
  slow.on('error', () => undefined);
  slow.write('POST / HTTP/1.1\r\nHost: x\r\n');
  let got = '';
  slow.on('data', (d: Buffer) => (got += d.toString()));
  const started = Date.now();
  await closed(slow, 5000);
  t.true(Date.now() - started < 3000);
  t.true(got === '' || /^HTTP\/1\.1 408 /.test(got), got);
  await assertStillServes(t, { port });
});

test('1000 idle connections are reaped, and the server still answers', async (t) => {
  const { port } = await startTestApi(t, data(), { limits: { headersTimeoutMs: 400, requestTimeoutMs: 800, idleTimeoutMs: 1000 } });
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: 1000 }, () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.once('connect', () => resolve());
        s.once('close', () => resolve());
        sockets.push(s);
      }),
    ),
  );
  const started = Date.now();
  await Promise.all(sockets.map((s) => closed(s, 8000)));
  t.true(Date.now() - started < 8000);
  await assertStillServes(t, { port });
});

test('a full listener evicts the oldest idle connection instead of refusing: held slots do not keep callers out (TCP and the socket)', async (t) => {
  const { port, socket } = await startTestApi(t, data(), { tcp: [{ host: '127.0.0.1', port: 0 }], limits: { maxConnections: 20 } });
  for (const target of [{ port } as Target, { socketPath: socket } as Target]) {
    const held: net.Socket[] = [];
    let dropped = 0;
    for (let i = 0; i < 60; i++) {
      const s = 'port' in target ? net.connect(target.port, '127.0.0.1') : net.connect(target.socketPath);
      s.on('error', () => undefined);
      s.once('close', () => dropped++);
      await new Promise((r) => s.once('connect', r));
      held.push(s);
    }
    let answered = 0;
    for (let i = 0; i < 5; i++) {
      const reply = await request(target, { body: GET_SSH_KEYS });
      if (reply.status === 200) answered++;
    }
    t.is(answered, 5, 'every caller answered while 60 idle connections were held');
    // The server kept at most 20: the rest of what was held is closed.
    const start = Date.now();
    while (dropped < 40 && Date.now() - start < 5000) await new Promise((r) => setImmediate(r));
    t.true(dropped >= 40, `${dropped} held connections closed`);
    for (const s of held) s.destroy();
    await Promise.all(held.map((s) => closed(s, 1000)));
  }
});

// ---- loopback only ----------------------------------------------------------------------------

test('loopback addresses and hosts', (t) => {
  for (const a of ['127.0.0.1', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) t.true(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '0.0.0.0', '::', '::ffff:10.0.0.1', '128.0.0.1', 'fe80::1', 'localhost', '', 'example.com']) t.false(isLoopbackAddress(a), a);
  t.true(isLoopbackHost('localhost'));
  t.true(isLoopbackHost('LOCALHOST'));
  t.false(isLoopbackHost('localhost.example.com'));
});

test('a non-loopback listen address is refused unless allowed', async (t) => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
    await t.throwsAsync(startApi({ data: data(), tcp: [{ host, port: 0 }] }), { message: /is not loopback/ }, host);
  }
  const open = await startApi({ data: data(), tcp: [{ host: '0.0.0.0', port: 0 }], allowNonLoopback: true });
  t.teardown(() => open.close());
  const port = (open.addresses[0] as { port: number }).port;
  await assertStillServes(t, { port });
});

test('the connection guard drops non-loopback TCP peers before reading', (t) => {
  const fake = (remoteAddress: string | undefined) => {
    let destroyed = false;
    return { remoteAddress, destroy: () => ((destroyed = true), undefined as never), get destroyed() { return destroyed; } };
  };
  for (const peer of ['10.0.0.7', '::ffff:192.168.1.1', undefined]) {
    const s = fake(peer);
    t.false(guardConnection(s, true, silentLogger), String(peer));
    t.true(s.destroyed);
  }
  for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.5']) {
    const s = fake(peer);
    t.true(guardConnection(s, true, silentLogger), peer);
    t.false(s.destroyed);
  }
  const unix = fake(undefined);
  t.true(guardConnection(unix, false, silentLogger), 'Unix-socket peers are local');
  t.false(unix.destroyed);
});

test('::1 is served on the same port as 127.0.0.1 where the host has IPv6 loopback', async (t) => {
  const { api, port } = await startTestApi(t, data());
  const v6 = api.addresses.find((a) => 'host' in a && a.host === '::1');
  if (!v6) {
    t.log('no IPv6 loopback on this host: ::1 was skipped with a warning');
    t.is(api.addresses.filter((a) => 'host' in a).length, 1);
    return;
  }
  t.is((v6 as { port: number }).port, port);
  await assertStillServes(t, { host: '::1', port });
});

// ---- the Unix socket --------------------------------------------------------------------------

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

test('the Unix socket is 0666, a stale one is replaced silently, and it stays (refusing) after close', async (t) => {
  const dir = tempDir('sliceid-api-');
  const file = path.join(dir, 'nodemanager.api');
  // A stale socket: bound by a process that is gone.
  const bind = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(file)})`]);
  t.is(bind.status, 0, bind.stderr.toString());
  t.true(fs.lstatSync(file).isSocket());
  const { logger, lines } = capture();
  const api = await startApi({ data: data(), tcp: [], socket: file, logger });
  t.is(fs.statSync(file).mode & 0o777, 0o666);
  t.deepEqual(api.addresses, [{ socket: file }]);
  t.false(lines.some((l) => l['level'] === 40), 'no warning for our own stale socket');
  await assertStillServes(t, { socketPath: file });
  await api.close();
  t.true(fs.lstatSync(file).isSocket(), 'the path stays taken');
  await t.throwsAsync(request({ socketPath: file }, { body: GET_SSH_KEYS }), { code: 'ECONNREFUSED' });
  t.deepEqual(fs.readdirSync(dir), ['nodemanager.api'], 'no temp directory left');
  // The next start takes it over again.
  const again = await startApi({ data: data(), tcp: [], socket: file });
  await assertStillServes(t, { socketPath: file });
  await again.close();
});

test('a socket path taken by something sliceid did not make is replaced with a warning; a live one of ours is refused', async (t) => {
  const dir = tempDir('sliceid-api-');
  const file = path.join(dir, 'nodemanager.api');
  const squats: Array<[string, () => void]> = [
    ['a file', () => fs.writeFileSync(file, 'squat')],
    ['a directory', () => fs.mkdirSync(path.join(file, 'x'), { recursive: true })],
    ['a symbolic link', () => fs.symlinkSync('/etc/passwd', file)],
    ['a FIFO', () => spawnSync('mkfifo', [file])],
  ];
  for (const [what, make] of squats) {
    make();
    fs.lchownSync(file, 4242, 4242);
    const { logger, lines } = capture();
    const api = await startApi({ data: data(), tcp: [], socket: file, logger });
    t.true(fs.lstatSync(file).isSocket(), what);
    await assertStillServes(t, { socketPath: file });
    t.true(lines.some((l) => l['level'] === 40 && /taken by uid 4242/.test(String(l['msg']))), what);
    await api.close();
    fs.rmSync(file, { force: true });
  }
  t.is(fs.readFileSync('/etc/passwd', 'utf8').length > 0, true, 'a symlink is replaced, never followed');
  // Another uid's live server at the path (a user impersonating the API): replaced.
  const squatter = net.createServer((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfake!'));
  await new Promise<void>((r) => squatter.listen(file, r));
  t.teardown(() => new Promise<void>((r) => squatter.close(() => r())));
  fs.lchownSync(file, 4242, 4242);
  const api = await startApi({ data: data(), tcp: [], socket: file });
  await assertStillServes(t, { socketPath: file });
  await api.close();

  // Our own uid's live socket: another sliceid. Refused, left alone.
  const live = path.join(dir, 'live.api');
  const other = net.createServer((s) => s.end());
  await new Promise<void>((r) => other.listen(live, r));
  t.teardown(() => new Promise<void>((r) => other.close(() => r())));
  await t.throwsAsync(startApi({ data: data(), tcp: [], socket: live }), { message: /in use by another process/ });
  t.true(fs.lstatSync(live).isSocket());
});

test('a busy port fails startApi clearly and leaves nothing listening', async (t) => {
  const { port } = await startTestApi(t, data(), { tcp: [{ host: '127.0.0.1', port: 0 }] });
  const dir = tempDir('sliceid-api-');
  const file = path.join(dir, 'nodemanager.api');
  await t.throwsAsync(startApi({ data: data(), tcp: [{ host: '127.0.0.1', port }], socket: file }), { message: new RegExp(`cannot listen on 127.0.0.1:${port}`) });
  t.false(fs.existsSync(file));
  await t.throwsAsync(startApi({ data: data(), tcp: [], limits: { bodyBytes: -1 } }), { message: /bodyBytes/ });
  await t.throwsAsync(startApi({ data: data(), tcp: [] }), { message: /nowhere to listen/ });
});

// ---- close ------------------------------------------------------------------------------------

test('close() stops within 2 s with idle, keep-alive and half-sent requests open', async (t) => {
  const { api, port, socket } = await startTestApi(t, data());
  const connect = (s: net.Socket): Promise<net.Socket> => {
    s.on('error', () => undefined);
    return new Promise((r) => s.once('connect', () => r(s)));
  };
  const [idle, half, kept] = await Promise.all([connect(net.connect(port, '127.0.0.1')), connect(net.connect(socket)), connect(net.connect(port, '127.0.0.1'))]);
  half.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<methodCall>');
  kept.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${GET_SSH_KEYS.length}\r\n\r\n${GET_SSH_KEYS}`);
  await new Promise((r) => kept.once('data', r));
  const started = Date.now();
  await api.close();
  t.true(Date.now() - started < 2000, `${Date.now() - started} ms`);
  await Promise.all([idle, half, kept].map((s) => closed(s, 1000)));
  t.true(fs.lstatSync(socket).isSocket(), 'the socket file stays, refusing connections');
  await t.throwsAsync(request({ port }, { body: GET_SSH_KEYS }), { code: 'ECONNREFUSED' });
});

test('a multicall reply in pieces arrives whole (TCP and the socket), within the reply budget, faults in the slots beyond it', async (t) => {
  const single = (await request({ port: (await startTestApi(t, data())).port }, { body: GET_SSH_KEYS })).body.length;
  const { port, socket } = await startTestApi(t, data(), { limits: { replyBytes: single * 20 } });
  const body = encodeMethodCall('system.multicall', [Array.from({ length: 256 }, () => ({ methodName: 'GetSSHKeys', params: [] }))]);
  for (const target of [{ port } as Target, { socketPath: socket } as Target]) {
    const reply = await request(target, { body });
    t.is(reply.status, 200);
    t.is(Number(reply.headers['content-length']), Buffer.byteLength(reply.body));
    t.true(Buffer.byteLength(reply.body) <= single * 20 + 256 * 400, `${Buffer.byteLength(reply.body)} bytes`);
    const results = (decodeMethodResponse(reply.body) as { params: unknown[][] }).params[0]!;
    t.is(results.length, 256);
    const answered = results.filter((r) => Array.isArray(r));
    t.true(answered.length >= 15 && answered.length <= 21, `${answered.length} answered`);
    for (const r of answered) t.deepEqual(r, [expected.GetSSHKeys]);
    t.like(results[255], { faultCode: 104 });
  }
});
