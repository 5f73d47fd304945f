// The server's decoder: a large request parsed a slice per event-loop turn, with the same result
// and the same refusals as the one-piece decoder.
import test from 'ava';
import { decodeMethodCall, decodeMethodCallSliced } from '../../src/xmlrpc/decode.js';
import { encodeMethodCall } from '../../src/xmlrpc/encode.js';
import { XmlRpcDecodeError } from '../../src/xmlrpc/types.js';

const big = encodeMethodCall('system.multicall', [
  Array.from({ length: 256 }, (_, i) => ({ methodName: 'GetSSHKeys', params: [`é😀${i}`, 'x'.repeat(100)] })),
]);

test('same call as the one-piece decoder, surrogate pairs across slice ends included', async (t) => {
  const whole = decodeMethodCall(big);
  for (const slice of [7, 64, 4096]) t.deepEqual(await decodeMethodCallSliced(Buffer.from(big), {}, slice), whole, `slice ${slice}`);
  t.deepEqual(await decodeMethodCallSliced(encodeMethodCall('Help', [])), { methodName: 'Help', params: [] });
});

test('the event loop turns between slices', async (t) => {
  let turns = 0;
  let run = true;
  const spin = (): void => {
    turns++;
    if (run) setImmediate(spin);
  };
  spin();
  await decodeMethodCallSliced(Buffer.from(big), {}, 1024);
  run = false;
  t.true(turns >= Math.floor(big.length / 1024) - 1, `${turns} turns for ${Math.ceil(big.length / 1024)} slices`);
});

test('refusals are the same: a DOCTYPE, a limit, broken XML', async (t) => {
  const doctype = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>${big.slice(big.indexOf('<methodCall>'))}`;
  for (const [doc, limits] of [
    [doctype, {}],
    [big, { maxElements: 100 }],
    [big.slice(0, big.length - 30), {}],
  ] as const) {
    const e = await t.throwsAsync(decodeMethodCallSliced(Buffer.from(doc), limits, 512));
    t.true(e instanceof XmlRpcDecodeError);
    const sync = t.throws(() => decodeMethodCall(Buffer.from(doc), limits));
    t.is((e as XmlRpcDecodeError).kind, (sync as XmlRpcDecodeError).kind);
  }
});
