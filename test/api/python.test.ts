// Python's xmlrpc.client (what Raven's tools use) against the API, over TCP and over the Unix
// socket (raw HTTP/1.0 as PlanetLab's forward_api_calls sends it, and ServerProxy).
import test from 'ava';
import fs from 'node:fs';
import { goodTrees, sharedFixtures } from '../helpers/fixtures.js';
import { fakeData, fakeFromExpected, python, startTestApi, type PyAnswer } from './helpers.js';

const METHODS = [
  'AdminTicket', 'Create', 'Destroy', 'GetEffectiveRSpec', 'GetLoans', 'GetRSpec', 'GetRecord', 'GetSSHKeys', 'GetXIDs',
  'Help', 'ReCreate', 'SetLoans', 'Start', 'Stop', 'Ticket', 'system.listMethods', 'system.methodHelp', 'system.multicall',
];
const INVALID_100 =
  'Invalid API method Nope.  Valid choices are AdminTicket, Create, Destroy, GetEffectiveRSpec, GetLoans, GetRSpec, ' +
  'GetRecord, GetSSHKeys, GetXIDs, Help, ReCreate, SetLoans, Start, Stop, Ticket, system.listMethods, system.methodHelp, system.multicall';
const NOT_OFFERED = 'Error in call: Create is not offered on this node: its slivers are managed by the testbed (Emulab/ProtoGENI), not by a Node Manager';
const NOT_A_SLIVER = 'Invalid argument: the first argument must be a sliver name.';

function hasNone(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (Array.isArray(v)) return v.some(hasNone);
  if (typeof v === 'object') return Object.values(v).some(hasNone);
  return false;
}

const trees = goodTrees();
test('there are fixture trees to test with', (t) => {
  // The project's own trees always; the shared ones exactly when ../shared/fixtures exists.
  t.true(trees.filter((x) => x.label.startsWith('own/')).length >= 4, trees.map((x) => x.label).join(', '));
  t.is(trees.some((x) => x.label.startsWith('shared/')), fs.existsSync(sharedFixtures));
});

for (const tree of trees) {
  test(`${tree.label}: GetSSHKeys equals expected.json over TCP and the Unix socket; the other methods answer as NodeManager`, async (t) => {
    const exp = tree.expected;
    const { url, socket, port } = await startTestApi(t, fakeFromExpected(exp, 20001));
    const [tcp, raw, proxy, py25] = (await python([
      {
        transport: 'tcp',
        url,
        calls: [
          ['GetSSHKeys', []],
          ['Help', []],
          ['GetXIDs', []],
          ['GetRecord', []],
          ['Nope', []],
          ['GetSSHKeys', [1]],
          ['Create', [exp.slicename]],
          ['Create', [1]],
          ['Create', ['other_slice']],
          ['SetLoans', ['x']],
          ['system.listMethods', []],
          ['system.multicall', [[{ methodName: 'GetXIDs', params: [] }, { methodName: 'Stop', params: [exp.slicename] }]]],
        ],
      },
      { transport: 'unix-http10', socket, calls: [['GetSSHKeys', []], ['GetXIDs', []], ['Nope', []]] },
      { transport: 'unix-proxy', socket, calls: [['GetSSHKeys', []], ['GetRecord', []]] },
      { transport: 'tcp-http10', host: '127.0.0.1', port, calls: [['GetSSHKeys', []], ['GetRecord', []]] },
    ])) as [PyAnswer[], PyAnswer[], PyAnswer[], PyAnswer[]];
    const [keys, help, xids, record, nope, argc, create, createInt, createOther, setLoans, list, multi] = tcp as PyAnswer[] & { length: 12 };

    t.deepEqual(keys, { ok: exp.GetSSHKeys }, 'GetSSHKeys over TCP');
    t.deepEqual(raw[0], { ok: exp.GetSSHKeys }, 'GetSSHKeys over the socket, raw HTTP/1.0');
    t.deepEqual(proxy[0], { ok: exp.GetSSHKeys }, 'GetSSHKeys over the socket, ServerProxy');
    t.deepEqual(py25![0], { ok: exp.GetSSHKeys }, 'GetSSHKeys over TCP, raw HTTP/1.0 as Python 2.5 sent it');
    t.deepEqual(py25![1], record, 'GetRecord over TCP, raw HTTP/1.0');
    // Raven's reading of the reply: keys.split("\n"), blank entries dropped, never a trailing newline.
    for (const joined of Object.values(exp.GetSSHKeys)) t.false(joined.endsWith('\n'));

    t.is(typeof help!.ok, 'string');
    const blocks = (help!.ok as string).split(/(?=^\*\*\*\* )/m);
    t.deepEqual(blocks.map((b) => /^\*\*\*\* (\S+)\n[^\n]+\n$/.exec(b)?.[1]), METHODS, 'Help: one "**** <Name>\\n<doc>\\n" block per method, sorted');

    t.deepEqual(xids, { ok: { [exp.slicename]: 20001 } });
    t.deepEqual(raw[1], xids);

    const rec = record!.ok as Record<string, unknown>;
    t.is(rec['name'], exp.slicename);
    t.is(rec['keys'], exp.GetSSHKeys[exp.slicename] ?? '');
    t.regex(rec['type'] as string, /^sliver\./);
    t.true(Number.isInteger(rec['timestamp']));
    t.is(typeof rec['attributes'], 'object');
    t.false(hasNone(rec), 'no nil in the record');
    t.deepEqual(rec['delegations'], [], 'the record carries delegations, as NodeManager\'s');
    t.deepEqual(proxy[1], record);

    t.deepEqual(nope, { fault: [100, INVALID_100] });
    t.deepEqual(raw[2], nope);
    t.deepEqual(argc, { fault: [101, 'Invalid argument count: got 1, expecting 0.'] });
    t.deepEqual(create, { fault: [104, NOT_OFFERED] });
    t.deepEqual(createInt, { fault: [102, NOT_A_SLIVER] });
    t.deepEqual(createOther, { fault: [102, NOT_A_SLIVER] }, 'a name that is not this node\'s slice is no sliver here');
    t.deepEqual(setLoans, { fault: [101, 'Invalid argument count: got 1, expecting 2.'] });
    t.deepEqual(list, { ok: METHODS });
    t.deepEqual(multi, {
      ok: [
        [{ [exp.slicename]: 20001 }],
        { faultCode: 104, faultString: NOT_OFFERED.replace('Create', 'Stop') },
      ],
    });
  });
}

test('a node on no slice: GetSSHKeys and GetXIDs are empty structs, GetRecord is fault 102', async (t) => {
  const { url } = await startTestApi(t, fakeData());
  const answers = await python({ transport: 'tcp', url, calls: [['GetSSHKeys', []], ['GetXIDs', []], ['GetRecord', []]] });
  t.deepEqual(answers, [{ ok: {} }, { ok: {} }, { fault: [102, NOT_A_SLIVER] }]);
});

test('a slice whose users have no keys is in GetSSHKeys with "" (over TCP and the socket); an unknown uid is absent from GetXIDs', async (t) => {
  const { url, socket, port } = await startTestApi(t, fakeData({ slicename: 'p_e', keys: [] }));
  const calls: Array<[string, unknown[]]> = [['GetSSHKeys', []], ['GetXIDs', []]];
  const answers = await python([
    { transport: 'tcp', url, calls },
    { transport: 'tcp-http10', host: '127.0.0.1', port, calls },
    { transport: 'unix-http10', socket, calls },
  ]);
  for (const a of answers) t.deepEqual(a, [{ ok: { p_e: '' } }, { ok: {} }]);
});

test('method names as sent, over TCP and the socket: blank, empty, padded names are fault 100 with NodeManager\'s text; then 101, then 102', async (t) => {
  const { url, socket, port } = await startTestApi(t, fakeFromExpected(trees[0]!.expected));
  const names = ['', ' ', 'GetSSHKeys ', ' GetSSHKeys', '\u00a0GetSSHKeys', 'GetSSHKeys\u00a0', 'GetSSHKeys\n'];
  const calls: Array<[string, unknown[]]> = [...names.map((n): [string, unknown[]] => [n, []]), ['Nope', [1]], ['Start', []], ['Start', ['other_slice']]];
  // ServerProxy cannot send an empty name (dumps() then writes no <methodCall>); raw requests can.
  const proxyCalls = calls.slice(1);
  const answers = await python([
    { transport: 'tcp-http10', host: '127.0.0.1', port, calls },
    { transport: 'unix-http10', socket, calls },
    { transport: 'tcp', url, calls: proxyCalls },
    { transport: 'unix-proxy', socket, calls: proxyCalls },
  ]);
  const expected: PyAnswer[] = [
    ...names.map((n): PyAnswer => ({ fault: [100, INVALID_100.replace('Nope', n)] })),
    { fault: [100, INVALID_100] },
    { fault: [101, 'Invalid argument count: got 0, expecting 1.'] },
    { fault: [102, NOT_A_SLIVER] },
  ];
  t.deepEqual(answers[0], expected, 'tcp, raw HTTP/1.0');
  t.deepEqual(answers[1], expected, 'unix, raw HTTP/1.0');
  t.deepEqual(answers[2], expected.slice(1), 'tcp, ServerProxy');
  t.deepEqual(answers[3], expected.slice(1), 'unix, ServerProxy');
});

test('Python sending gzip-compressed requests (Content-Encoding: gzip) gets the same answers', async (t) => {
  const exp = trees[0]!.expected;
  const { url } = await startTestApi(t, fakeFromExpected(exp));
  const [answers] = await python([{ transport: 'tcp', url, gzip: true, calls: [['GetSSHKeys', []], ['Nope', []], ['system.methodHelp', ['GetXIDs']]] }]);
  t.deepEqual(answers, [{ ok: exp.GetSSHKeys }, { fault: [100, INVALID_100] }, { ok: 'Return a dictionary mapping slice names to XIDs (unix user ids)' }]);
});

test('Python sending a 2 MiB body gets HTTP 413, and its next call succeeds', async (t) => {
  const exp = trees[0]!.expected;
  const { url } = await startTestApi(t, fakeFromExpected(exp));
  const started = Date.now();
  const [big, next] = await python({ transport: 'tcp', url, calls: [['GetSSHKeys', ['x'.repeat(2 * 1024 * 1024)]], ['GetSSHKeys', []]] });
  t.is(big!.http?.[0], 413, JSON.stringify(big).slice(0, 300));
  t.deepEqual(next, { ok: exp.GetSSHKeys });
  t.true(Date.now() - started < 15_000, 'no hang (the time includes starting Python)');
});
