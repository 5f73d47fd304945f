// The method table and dispatcher, without the network.
import test from 'ava';
import { createNodeManager, SLIVER_METHODS } from '../../src/api/nodemanager.js';
import type { NodeManagerData } from '../../src/api/types.js';
import { decodeMethodResponse } from '../../src/xmlrpc/decode.js';
import type { MethodResponse, XmlRpcValue } from '../../src/xmlrpc/types.js';
import { fakeData } from './helpers.js';

const KEYS = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdRCiMKoSIq4rGUReEyM7QoTLetl9R+XCsm8taaoIul alice@laptop', 'ssh-rsa AAAAB3Nza bob'];
const slice = () =>
  fakeData({
    slicename: 'myproj_myexp',
    keys: KEYS,
    uid: 10001,
    record: { name: 'myproj_myexp', keys: KEYS.join('\n'), type: 'sliver.Emulab', timestamp: 1, attributes: {} },
  });

const answer = (nm: ReturnType<typeof createNodeManager>, methodName: string, params: XmlRpcValue[] = []): MethodResponse =>
  decodeMethodResponse(nm.respond({ methodName, params }));

test('GetSSHKeys: slice name -> keys joined by newlines; the encoded reply is reused while the version holds', (t) => {
  const data = slice();
  const nm = createNodeManager(data);
  const first = nm.respond({ methodName: 'GetSSHKeys', params: [] });
  t.deepEqual(decodeMethodResponse(first), { params: [{ myproj_myexp: KEYS.join('\n') }] });
  const keyReads = data.calls.sliceKeys;
  for (let i = 0; i < 100; i++) t.is(nm.respond({ methodName: 'GetSSHKeys', params: [] }), first, 'the same bytes');
  t.is(data.calls.sliceKeys, keyReads, 'no data read per request');
  data.update({ keys: [KEYS[1]!] });
  t.deepEqual(answer(nm, 'GetSSHKeys'), { params: [{ myproj_myexp: KEYS[1]! }] }, 'a new version is answered anew');
  data.update({ keys: [] });
  t.deepEqual(answer(nm, 'GetSSHKeys'), { params: [{ myproj_myexp: '' }] }, 'no listable keys: the slice is there with ""');
  data.update({ slicename: undefined, keys: KEYS });
  t.deepEqual(answer(nm, 'GetSSHKeys'), { params: [{}] }, 'no slice: empty struct');
});

test('GetXIDs, GetRecord (nil members dropped), Help', (t) => {
  const data = slice();
  const nm = createNodeManager(data);
  t.deepEqual(answer(nm, 'GetXIDs'), { params: [{ myproj_myexp: 10001 }] });
  data.update({ record: { name: 'n', keys: '', type: 'sliver.Emulab', timestamp: 5, attributes: {}, gone: undefined as unknown as string } });
  t.deepEqual(answer(nm, 'GetRecord'), { params: [{ name: 'n', keys: '', type: 'sliver.Emulab', timestamp: 5, attributes: {}, delegations: [] }] }, 'delegations: an empty array');
  data.update({ uid: undefined, record: undefined });
  t.deepEqual(answer(nm, 'GetXIDs'), { params: [{}] });
  t.deepEqual(answer(nm, 'GetRecord'), { fault: { faultCode: 102, faultString: 'Invalid argument: the first argument must be a sliver name.' } });
  const help = (answer(nm, 'Help') as { params: [string] }).params[0];
  t.true(help.startsWith('**** AdminTicket\n'));
  t.true(help.includes('\n**** GetSSHKeys\nReturn a dictionary mapping slice names to SSH keys'));
  t.true(help.endsWith('\n'));
});

test('faults 100 and 101 to the byte', (t) => {
  const nm = createNodeManager(slice());
  t.deepEqual(answer(nm, 'GetSshKeys'), {
    fault: {
      faultCode: 100,
      faultString:
        'Invalid API method GetSshKeys.  Valid choices are AdminTicket, Create, Destroy, GetEffectiveRSpec, GetLoans, GetRSpec, GetRecord, GetSSHKeys, GetXIDs, Help, ReCreate, SetLoans, Start, Stop, Ticket, system.listMethods, system.methodHelp, system.multicall',
    },
  });
  t.deepEqual(answer(nm, 'Help', [1, 2]), { fault: { faultCode: 101, faultString: 'Invalid argument count: got 2, expecting 0.' } });
  t.deepEqual(answer(nm, 'Create'), { fault: { faultCode: 101, faultString: 'Invalid argument count: got 0, expecting 1.' } });
});

test('sliver management: argument count (101), then a sliver of this node (102), then "not offered here" (104)', (t) => {
  const data = slice();
  const nm = createNodeManager(data);
  t.deepEqual(Object.keys(SLIVER_METHODS).sort(), ['AdminTicket', 'Create', 'Destroy', 'GetEffectiveRSpec', 'GetLoans', 'GetRSpec', 'ReCreate', 'SetLoans', 'Start', 'Stop', 'Ticket']);
  for (const [name, args] of Object.entries(SLIVER_METHODS)) {
    const rest = Array.from({ length: args - 1 }, () => 0);
    t.deepEqual(answer(nm, name, [...rest, 'a', 'b']), { fault: { faultCode: 101, faultString: `Invalid argument count: got ${args + 1}, expecting ${args}.` } });
    const notOffered = {
      fault: { faultCode: 104, faultString: `Error in call: ${name} is not offered on this node: its slivers are managed by the testbed (Emulab/ProtoGENI), not by a Node Manager` },
    };
    // Ticket's argument is a ticket, not a sliver: NodeManager checks no target for it.
    const other = name === 'Ticket' ? notOffered : { fault: { faultCode: 102, faultString: 'Invalid argument: the first argument must be a sliver name.' } };
    for (const notThisSliver of [1, true, null, [], {}, new Uint8Array(), 'other_slice', 'myproj_myexp ', 'MYPROJ_MYEXP', ''] as XmlRpcValue[]) {
      t.deepEqual(answer(nm, name, [notThisSliver, ...rest]), other, `${name}(${JSON.stringify(notThisSliver)})`);
    }
    t.deepEqual(answer(nm, name, ['myproj_myexp', ...rest]), notOffered);
  }
  data.update({ slicename: undefined });
  t.deepEqual(answer(nm, 'Stop', ['myproj_myexp']), { fault: { faultCode: 102, faultString: 'Invalid argument: the first argument must be a sliver name.' } }, 'a node on no slice has no sliver');
});

test('the method name is used exactly as sent: blank, padded or empty names are unknown methods (100), with NodeManager\'s text', (t) => {
  const nm = createNodeManager(slice());
  for (const name of ['', ' ', '\n', '\u00a0', 'GetSSHKeys ', ' GetSSHKeys', 'GetSSHKeys\n', 'GetSSHKeys\u00a0', 'getsshkeys']) {
    t.deepEqual(answer(nm, name), { fault: { faultCode: 100, faultString: `Invalid API method ${name}.  Valid choices are ${nm.methods.join(', ')}` } }, JSON.stringify(name));
  }
  // NodeManager's order: the method first (100), then the argument count (101), then the target (102).
  t.is((answer(nm, 'Nope', [1, 2, 3]) as { fault: { faultCode: number } }).fault.faultCode, 100);
  t.is((answer(nm, 'Start', [1, 2]) as { fault: { faultCode: number } }).fault.faultCode, 101);
  t.is((answer(nm, 'Start', [1]) as { fault: { faultCode: number } }).fault.faultCode, 102);
});

test('system.listMethods, system.methodHelp', (t) => {
  const nm = createNodeManager(slice());
  t.deepEqual(answer(nm, 'system.listMethods'), { params: [[...nm.methods]] });
  t.deepEqual(answer(nm, 'system.methodHelp', ['GetXIDs']), { params: ['Return a dictionary mapping slice names to XIDs (unix user ids)'] });
  t.deepEqual(answer(nm, 'system.methodHelp', ['Nope']), { params: [''] });
  t.is((answer(nm, 'system.methodHelp', [3]) as { fault: { faultCode: number } }).fault.faultCode, 104);
});

test('system.multicall: results in one-element arrays, faults as structs, no nesting, bounded', (t) => {
  const nm = createNodeManager(slice(), { multicallMax: 5 });
  t.deepEqual(
    answer(nm, 'system.multicall', [
      [
        { methodName: 'GetXIDs', params: [] },
        { methodName: 'Nope', params: [] },
        { methodName: 'system.multicall', params: [[]] },
        { methodName: 'GetXIDs' },
        'not a struct',
      ],
    ]),
    {
      params: [
        [
          [{ myproj_myexp: 10001 }],
          { faultCode: 100, faultString: `Invalid API method Nope.  Valid choices are ${nm.methods.join(', ')}` },
          { faultCode: 104, faultString: 'Error in call: system.multicall cannot be nested' },
          { faultCode: 104, faultString: 'Error in call: system.multicall call 3 needs a methodName (string) and params (array)' },
          { faultCode: 104, faultString: 'Error in call: system.multicall call 4 needs a methodName (string) and params (array)' },
        ],
      ],
    },
  );
  t.deepEqual(answer(nm, 'system.multicall', [Array.from({ length: 6 }, () => ({ methodName: 'Help', params: [] }))]), {
    fault: { faultCode: 104, faultString: 'Error in call: system.multicall takes at most 5 calls, got 6' },
  });
  t.is((answer(nm, 'system.multicall', ['x']) as { fault: { faultCode: number } }).fault.faultCode, 104);
});

test('nothing escapes the dispatcher: a failing data layer is fault 104 and is retried next time', (t) => {
  let broken = true;
  const data: NodeManagerData = {
    slicename: () => 'p_e',
    sliceKeys: () => {
      if (broken) throw new Error('database is locked');
      return ['ssh-ed25519 AAAA k'];
    },
    sliceUid: () => undefined,
    record: () => undefined,
    version: () => 7,
  };
  const nm = createNodeManager(data);
  t.deepEqual(answer(nm, 'GetSSHKeys'), { fault: { faultCode: 104, faultString: 'Error in call: database is locked' } });
  broken = false;
  t.deepEqual(answer(nm, 'GetSSHKeys'), { params: [{ p_e: 'ssh-ed25519 AAAA k' }] }, 'the failure was not memoized');
  const throwsEverywhere = new Proxy(data, { get: () => () => { throw new TypeError('boom'); } });
  for (const m of ['GetSSHKeys', 'GetXIDs', 'GetRecord', 'Help']) {
    t.is((answer(createNodeManager(throwsEverywhere), m) as { fault: { faultCode: number } }).fault.faultCode, 104, m);
  }
  // A key text XML cannot carry is a 104 too, not a broken document.
  const nul = createNodeManager({ ...data, sliceKeys: () => ['ssh-rsa AAAA \u0000'] });
  t.regex((answer(nul, 'GetSSHKeys') as { fault: { faultString: string } }).fault.faultString, /^Error in call: string holds U\+0000/);
});

test('GetRecord carries the current timestamp even when no data changed', (t) => {
  let timestamp = 100;
  const nm = createNodeManager({
    slicename: () => 's',
    sliceKeys: () => [],
    sliceUid: () => undefined,
    record: () => ({ name: 's', keys: '', type: 'sliver.Emulab', timestamp, attributes: {} }),
    version: () => 1,
  });
  t.is((answer(nm, 'GetRecord') as { params: Array<{ timestamp: number }> }).params[0]!.timestamp, 100);
  timestamp = 200;
  t.is((answer(nm, 'GetRecord') as { params: Array<{ timestamp: number }> }).params[0]!.timestamp, 200);
});

test('system.multicall: memoized members are the memo bytes by reference; members share one reply budget', (t) => {
  const big = `ssh-rsa AAAAB3Nza ${'x'.repeat(200)}`;
  const data = fakeData({ slicename: 's', keys: Array.from({ length: 40 }, () => big) });
  const single = createNodeManager(data).respond({ methodName: 'GetSSHKeys', params: [] }).length;
  const budget = single * 10;
  const nm = createNodeManager(data, { replyBudget: budget });
  const calls = Array.from({ length: 256 }, () => ({ methodName: 'GetSSHKeys', params: [] }));
  const chunks = nm.respondChunks({ methodName: 'system.multicall', params: [calls] });
  const memoBody = nm.respond({ methodName: 'GetSSHKeys', params: [] });
  const values = chunks.filter((c) => c.length > 1000);
  t.true(values.length > 0 && values.length <= 10, `${values.length} members answered within the budget`);
  for (const v of values) t.is(v.buffer, memoBody.buffer, 'a member is a view of the memo, not a copy');
  const total = chunks.reduce((n, c) => n + c.length, 0);
  t.true(total <= budget + 256 * 400, `reply ${total} bytes within the budget plus the faults`);
  const res = decodeMethodResponse(Buffer.concat(chunks));
  const results = (res as { params: XmlRpcValue[][] }).params[0] as XmlRpcValue[];
  t.is(results.length, 256, 'every member has its slot');
  t.deepEqual(results[0], [{ s: data.sliceKeys().join('\n') }]);
  const last = results[255] as { faultCode: number; faultString: string };
  t.is(last.faultCode, 104);
  t.regex(last.faultString, /not answered: the reply would exceed \d+ bytes/);
  t.is(data.calls.sliceKeys, 3, 'the keys were read once per NodeManager (two here) and once by this test: never per member');
});

test('respond and respondChunks give the same bytes', (t) => {
  const nm = createNodeManager(slice());
  for (const call of [
    { methodName: 'GetSSHKeys', params: [] },
    { methodName: 'Help', params: [] },
    { methodName: 'system.multicall', params: [[{ methodName: 'GetXIDs', params: [] }, { methodName: 'Nope', params: [] }]] },
  ]) {
    t.deepEqual(Buffer.concat(nm.respondChunks(call)), nm.respond(call));
  }
});
