import test from 'ava';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type http from 'node:http';
import { connectionDeadlines } from '../../src/api/deadlines.js';

function fakeSocket(): net.Socket & { destroyed: boolean } {
  const s = new EventEmitter() as unknown as net.Socket & { destroyed: boolean };
  s.destroyed = false;
  (s as unknown as { destroy: () => void }).destroy = () => {
    s.destroyed = true;
    s.emit('close');
  };
  return s;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a connection that sends no complete request is destroyed at the headers deadline', async (t) => {
  const d = connectionDeadlines({ headersTimeoutMs: 30, requestTimeoutMs: 1000, keepAliveTimeoutMs: 1000 });
  const s = fakeSocket();
  d.connected(s);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await closed;
  t.true(s.destroyed);
});

test('a request limit of 0 turns the deadline off: no timer, no spinning, no warnings', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): number => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const d = connectionDeadlines({ headersTimeoutMs: 20, requestTimeoutMs: 0, keepAliveTimeoutMs: 1000 });
  const s = fakeSocket();
  d.connected(s);
  d.request(s, new EventEmitter() as unknown as http.ServerResponse);
  await wait(80); // past the headers deadline the request replaced
  t.false(s.destroyed);
  t.deepEqual(warnings.map((w) => w.name), []);
  s.emit('close');
});
