import test from 'ava';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { decodeMethodCall, decodeMethodResponse } from '../../src/xmlrpc/decode.js';
import {
  encodeFault,
  encodeMethodCall,
  encodeResponse,
  encodeValue,
  formatDouble,
  isXmlText,
} from '../../src/xmlrpc/encode.js';
import { XmlRpcDecodeError, XmlRpcEncodeError, type XmlRpcStruct, type XmlRpcValue } from '../../src/xmlrpc/types.js';

// ---- arbitraries ------------------------------------------------------------------------------

const tricky = fc.constantFrom('&', '<', '>', '\r', '\n', '\r\n', '\t', ' ', ']]>', '"', "'", 'é', '😀', '\u2028', '\uFFFD', 'a');
const xmlString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }).filter(isXmlText),
  fc.string({ unit: tricky, maxLength: 12 }),
);
const memberName = fc.oneof(xmlString, fc.constantFrom('__proto__', 'constructor', 'faultCode', ''));
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const double = fc.double({ noNaN: true, noDefaultInfinity: true });
// dateTime.iso8601 carries whole seconds of years 0000-9999.
const dateTime = fc.integer({ min: -62167219200, max: 253402300799 }).map((s) => new Date(s * 1000));

function structOf(entries: Array<[string, XmlRpcValue]>): XmlRpcStruct {
  const out: XmlRpcStruct = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

const { value } = fc.letrec<{ value: XmlRpcValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    xmlString,
    int32,
    double,
    fc.boolean(),
    dateTime,
    fc.uint8Array({ maxLength: 48 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(memberName, tie('value')), { maxLength: 5, selector: ([k]) => k }).map(structOf),
  ),
}));

const roundTrip = (v: XmlRpcValue): XmlRpcValue => decodeMethodCall(encodeMethodCall('m', [v])).params[0]!;

// ---- round trips ------------------------------------------------------------------------------

test('decode(encode(v)) equals v for every XML-RPC type, nested', (t) => {
  fc.assert(
    fc.property(value, (v) => {
      t.deepEqual(roundTrip(v), v);
    }),
    { numRuns: 400 },
  );
});

test('a response round-trips through decodeMethodResponse, a fault too', (t) => {
  fc.assert(
    fc.property(value, (v) => {
      t.deepEqual(decodeMethodResponse(encodeResponse(v)), { params: [v] });
    }),
    { numRuns: 150 },
  );
  fc.assert(
    fc.property(int32, xmlString, (faultCode, faultString) => {
      t.deepEqual(decodeMethodResponse(encodeFault({ faultCode, faultString })), { fault: { faultCode, faultString } });
    }),
    { numRuns: 150 },
  );
});

test('doubles keep their exact value and are written without exponents', (t) => {
  for (const d of [-0, 0.1, 1e21, 1.5e300, -2.5e-300, 5e-324, Number.MAX_VALUE, 2 ** 53 + 2, 3e9, 1e-7]) {
    const text = formatDouble(d);
    t.regex(text, /^-?[0-9]+\.[0-9]+$/, String(d));
    t.true(Object.is(Number(text), d), String(d));
    t.true(Object.is(roundTrip(d), d), String(d));
  }
  t.is(encodeValue(3e9), '<value><double>3000000000.0</double></value>\n', 'integers beyond int32 go out as double');
  t.is(encodeValue(-7), '<value><int>-7</int></value>\n');
});

test('carriage returns and markup characters survive; escaping is & < > and CR only', (t) => {
  t.is(roundTrip('a\r\nb\rc\n'), 'a\r\nb\rc\n');
  t.is(encodeValue('<a & b> "q" \'s\'\r'), "<value><string>&lt;a &amp; b&gt; \"q\" 's'&#13;</string></value>\n");
  t.is(roundTrip(']]>'), ']]>');
});

test('the fast path for argument-less calls agrees with the full parser', (t) => {
  const ws = fc.stringMatching(/^[ \t\r\n]{0,3}$/);
  const doc = fc.record({
    decl: fc.constantFrom('', "<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8' ?>"),
    name: fc.stringMatching(/^[A-Za-z0-9_.:/]{1,40}$/),
    params: fc.constantFrom('', '<params></params>', '<params>\n</params>', '<params/>'),
    w: fc.array(ws, { minLength: 5, maxLength: 5 }),
  });
  fc.assert(
    fc.property(doc, ({ decl, name, params, w }) => {
      const text = `${decl}${w[0]}<methodCall>${w[1]}<methodName>${name}</methodName>${w[2]}${params}${w[3]}</methodCall>${w[4]}`;
      const viaSaxes = decodeMethodCall(`${text}<!-- not for the fast path -->`);
      t.deepEqual(decodeMethodCall(text), viaSaxes);
      t.deepEqual(decodeMethodCall(Buffer.from(text)), { methodName: name, params: [] });
    }),
    { numRuns: 300 },
  );
});

// ---- the decoder never throws anything but XmlRpcDecodeError ---------------------------------

function decodesOrRefuses(t: import('ava').ExecutionContext, input: string | Uint8Array): void {
  try {
    const call = decodeMethodCall(input);
    t.is(typeof call.methodName, 'string');
  } catch (err) {
    if (!(err instanceof XmlRpcDecodeError)) t.fail(`threw ${String(err)} for ${JSON.stringify(String(input)).slice(0, 200)}`);
  }
}

test('arbitrary strings and bytes decode or raise XmlRpcDecodeError, nothing else', (t) => {
  const token = fc.constantFrom(
    '<methodCall>', '</methodCall>', '<methodName>', '</methodName>', 'Get', '<params>', '</params>', '<param>', '</param>',
    '<value>', '</value>', '<struct>', '</struct>', '<member>', '</member>', '<name>', '</name>', '<array>', '</array>',
    '<data>', '</data>', '<int>', '</int>', '<i4>', '<i8>', '</i8>', '<ex:nil/>', '<nil/>', '<boolean>', '</boolean>', '<double>',
    '</double>', '<dateTime.iso8601>', '</dateTime.iso8601>', '<base64>', '</base64>', '<string>', '</string>', '1', '-2',
    '1e5', 'x', ' ', '\n', '&amp;', '&#0;', '&#x10FFFF;', '&foo;', '<!DOCTYPE a>', '<![CDATA[', ']]>', '<?pi?>',
    "<?xml version='1.0'?>", '<!--', '-->', '"', '=', '<', '>', '\uFEFF', '\uD800', '\u0000',
  );
  fc.assert(fc.property(fc.array(token, { maxLength: 40 }), (parts) => decodesOrRefuses(t, parts.join(''))), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => decodesOrRefuses(t, s)), { numRuns: 1000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => decodesOrRefuses(t, b)), { numRuns: 1000 });
  // Mutations of a valid call: cut, duplicated or flipped characters.
  const valid = encodeMethodCall('system.multicall', [[{ methodName: 'GetSSHKeys', params: [] }], 1, 'x', 2.5, true, new Uint8Array([1])]);
  fc.assert(
    fc.property(fc.nat(valid.length - 1), fc.nat(valid.length - 1), fc.string({ unit: 'binary-ascii', maxLength: 3 }), (i, j, ins) =>
      decodesOrRefuses(t, valid.slice(0, Math.min(i, j)) + ins + valid.slice(Math.max(i, j))),
    ),
    { numRuns: 2000 },
  );
});

// ---- what the decoder accepts -----------------------------------------------------------------

const call = (params: string, name = 'm'): string => `<?xml version="1.0"?><methodCall><methodName>${name}</methodName><params>${params}</params></methodCall>`;
const one = (inner: string): XmlRpcValue => decodeMethodCall(call(`<param><value>${inner}</value></param>`)).params[0]!;

test('untyped values are strings, whitespace kept', (t) => {
  t.is(one('plain text'), 'plain text');
  t.is(one(''), '');
  t.is(one('  spaced  '), '  spaced  ');
  t.is(one('<string/>'), '');
  t.is(one('\n  <string>typed</string>\n'), 'typed');
  t.is(one('<![CDATA[<raw> & ]]>'), '<raw> & ');
  t.is(one('a&amp;b&#65;&#x42;&lt;&gt;&quot;&apos;'), 'a&bAB<>"\'');
});

test('int, i4, i8, nil (also namespaced), boolean, double, dateTime, base64', (t) => {
  t.is(one('<int> +42 </int>'), 42);
  t.is(one('<i4>-2147483648</i4>'), -2147483648);
  t.is(one('<i8>9007199254740991</i8>'), 9007199254740991);
  t.is(one('<ex:i8>-5</ex:i8>'), -5);
  t.is(one('<nil/>'), null);
  t.is(one('<ex:nil/>'), null);
  t.is(one('<boolean>1</boolean>'), true);
  t.is(one('<boolean>0</boolean>'), false);
  t.is(one('<double>-1.5e3</double>'), -1500);
  t.is(one('<double>.5</double>'), 0.5);
  t.deepEqual(one('<dateTime.iso8601>20260102T03:04:05</dateTime.iso8601>'), new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
  t.deepEqual(one('<dateTime.iso8601>2026-01-02T03:04:05Z</dateTime.iso8601>'), new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
  t.deepEqual(one('<dateTime.iso8601>2026-01-02T03:04:05+01:00</dateTime.iso8601>'), new Date(Date.UTC(2026, 0, 2, 2, 4, 5)));
  t.deepEqual(one('<base64>AQID\nBA==</base64>'), new Uint8Array([1, 2, 3, 4]));
  t.deepEqual(one('<array><data/></array>'), []);
  t.deepEqual(one('<struct/>'), {});
});

test('a struct member called __proto__ is data, not the prototype', (t) => {
  const v = one('<struct><member><name>__proto__</name><value><struct><member><name>polluted</name><value>1</value></member></struct></value></member></struct>') as XmlRpcStruct;
  t.is(Object.getPrototypeOf(v), Object.prototype);
  t.deepEqual(Object.keys(v), ['__proto__']);
  t.is(({} as Record<string, unknown>)['polluted'], undefined);
});

test('bad values are refused as structure errors', (t) => {
  for (const bad of [
    '<int>2147483648</int>',
    '<int>1.0</int>',
    '<i8>9007199254740992</i8>',
    '<boolean>true</boolean>',
    '<double>inf</double>',
    '<double>NaN</double>',
    '<double>1e999</double>',
    '<dateTime.iso8601>20260230T00:00:00</dateTime.iso8601>',
    '<dateTime.iso8601>yesterday</dateTime.iso8601>',
    '<base64>not base64!</base64>',
    '<string><int>1</int></string>',
    '<unknown>1</unknown>',
    'text<int>1</int>',
    '<int>1</int><int>2</int>',
    '<struct><member><value>1</value></member></struct>',
    '<array><value>1</value></array>',
    '<nil>x</nil>',
  ]) {
    const err = t.throws(() => one(bad), { instanceOf: XmlRpcDecodeError }, bad);
    t.is(err?.kind, 'structure', bad);
  }
  t.throws(() => decodeMethodCall('<methodCall><params/></methodCall>'), { instanceOf: XmlRpcDecodeError, message: /no method name/ });
  t.throws(() => decodeMethodCall('<methodResponse/>'), { instanceOf: XmlRpcDecodeError, message: /not <methodCall>/ });
});

test('DOCTYPE, entities and processing instructions are refused; billion laughs stops at once', (t) => {
  let lol = '<!DOCTYPE lolz [<!ENTITY lol "lol">';
  for (let i = 1; i <= 9; i++) lol += `<!ENTITY lol${i} "${`&lol${i - 1 || ''};`.repeat(10)}">`;
  lol += ']>';
  const err = t.throws(() => decodeMethodCall(`<?xml version="1.0"?>${lol}<methodCall><methodName>&lol9;</methodName></methodCall>`), { instanceOf: XmlRpcDecodeError });
  t.is(err?.kind, 'forbidden');
  // Refused at the DOCTYPE itself: what follows it is never read (garbage there changes nothing).
  t.is(t.throws(() => decodeMethodCall(`<?xml version="1.0"?>${lol}&lol9; <<< not XML`), { instanceOf: XmlRpcDecodeError })?.kind, 'forbidden');
  t.is(
    t.throws(() => decodeMethodCall('<!DOCTYPE m SYSTEM "file:///etc/passwd"><methodCall><methodName>x</methodName></methodCall>'), { instanceOf: XmlRpcDecodeError })?.kind,
    'forbidden',
  );
  t.is(t.throws(() => decodeMethodCall(call('<param><value>&xxe;</value></param>')), { instanceOf: XmlRpcDecodeError })?.kind, 'xml');
  t.is(t.throws(() => decodeMethodCall('<?foo href="x"?><methodCall><methodName>m</methodName></methodCall>'), { instanceOf: XmlRpcDecodeError })?.kind, 'forbidden');
  t.is(t.throws(() => decodeMethodCall(call('<?php x?>')), { instanceOf: XmlRpcDecodeError })?.kind, 'forbidden');
  t.is(decodeMethodCall(`${call('<!-- c --><param><value>1</value></param>')}<!-- after -->`).params[0], '1');
});

test('depth, element count and text size are bounded', (t) => {
  const deep = `<methodCall><methodName>m</methodName><params><param>${'<value><array><data>'.repeat(20000)}${'</data></array></value>'.repeat(20000)}</param></params></methodCall>`;
  t.is(t.throws(() => decodeMethodCall(deep), { instanceOf: XmlRpcDecodeError })?.kind, 'limit');
  // Refused at the first element too deep: the rest (20,000 levels, never closed, then garbage) is never read.
  t.is(t.throws(() => decodeMethodCall(`<methodCall><methodName>m</methodName><params><param>${'<value><array><data>'.repeat(20000)} <<< not XML`), { instanceOf: XmlRpcDecodeError })?.kind, 'limit');
  const nested20 = `<value>${'<array><data><value>'.repeat(19)}1${'</value></data></array>'.repeat(19)}</value>`;
  t.notThrows(() => decodeMethodCall(call(`<param>${nested20}</param>`)), '19 levels of arrays fit in depth 64');
  const many = call(`<param><value><array><data>${'<value/>'.repeat(200)}</data></array></value></param>`);
  t.is((decodeMethodCall(many).params[0] as XmlRpcValue[]).length, 200);
  t.is(t.throws(() => decodeMethodCall(many, { maxElements: 100 }), { instanceOf: XmlRpcDecodeError })?.kind, 'limit');
  t.is(t.throws(() => decodeMethodCall(call(`<param><value>${'x'.repeat(5000)}</value></param>`), { maxStringLength: 4096 }), { instanceOf: XmlRpcDecodeError })?.kind, 'limit');
  // A long name is no structure error: it reaches the dispatcher, which answers fault 100.
  t.is(decodeMethodCall(call('', 'x'.repeat(300))).methodName, 'x'.repeat(300));
});

test('the method name is taken exactly as sent: no trimming of spaces, newlines or no-break spaces; empty is a name', (t) => {
  for (const name of ['GetSSHKeys ', ' GetSSHKeys', '\nGetSSHKeys\n', 'GetSSHKeys\u00a0', '\u00a0', ' ', '\t', '']) {
    t.is(decodeMethodCall(call('', name)).methodName, name, JSON.stringify(name));
    t.is(decodeMethodCall(Buffer.from(call('', name))).methodName, name, `${JSON.stringify(name)} as bytes`);
  }
  t.is(decodeMethodCall('<methodCall><methodName/></methodCall>').methodName, '');
  t.is(decodeMethodCall('<methodCall><methodName>&#32;GetSSHKeys</methodName></methodCall>').methodName, ' GetSSHKeys');
});

test('UTF-16 (LE and BE, with a byte order mark or recognised by "<?"), UTF-8 with a BOM; contradictions and unknown encodings refused', (t) => {
  const doc = (decl: string): string => `<?xml version="1.0"${decl}?><methodCall><methodName>m</methodName><params><param><value>é😀</value></param></params></methodCall>`;
  const le = (s: string): Buffer => Buffer.from(s, 'utf16le');
  const be = (s: string): Buffer => le(s).swap16();
  const bomLe = Buffer.from([0xff, 0xfe]);
  const bomBe = Buffer.from([0xfe, 0xff]);
  const cases: Array<[string, Buffer]> = [
    ['LE with BOM, no encoding declared', Buffer.concat([bomLe, le(doc(''))])],
    ['LE with BOM, UTF-16 declared', Buffer.concat([bomLe, le(doc(' encoding="UTF-16"'))])],
    ['BE with BOM, utf-16 declared', Buffer.concat([bomBe, be(doc(" encoding='utf-16'"))])],
    ['LE without BOM, UTF-16LE declared', le(doc(' encoding="UTF-16LE"'))],
    ['BE without BOM, UTF-16BE declared', be(doc(' encoding="UTF-16BE"'))],
    ['UTF-8 with BOM, UTF-8 declared', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc(' encoding="UTF-8"'))])],
  ];
  for (const [what, bytes] of cases) t.deepEqual(decodeMethodCall(bytes), { methodName: 'm', params: ['é😀'] }, what);
  const refused: Array<[string, Buffer, RegExp]> = [
    ['UTF-16 declared, bytes are 8-bit', Buffer.from(doc(' encoding="UTF-16"')), /names "utf-16" but the body is not UTF-16/],
    ['UTF-16 bytes declaring ISO-8859-1', Buffer.concat([bomLe, le(doc(' encoding="ISO-8859-1"'))]), /names "iso-8859-1" but the body is UTF-16/],
    ['UTF-8 BOM declaring ISO-8859-1', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc(' encoding="ISO-8859-1"'))]), /byte order mark/],
    ['an odd number of UTF-16 bytes', Buffer.concat([bomLe, le(doc('')), Buffer.from([0x20])]), /not valid UTF-16/],
    ['a lone surrogate in UTF-16', Buffer.concat([bomLe, le('<methodCall><methodName>'), Buffer.from([0x00, 0xd8]), le('</methodName></methodCall>')]), /not valid UTF-16/],
    ['an encoding not supported', Buffer.from(doc(' encoding="Shift_JIS"')), /unsupported encoding "shift_jis" \(supported: UTF-8, US-ASCII, ISO-8859-1, UTF-16\)/],
  ];
  for (const [what, bytes, message] of refused) {
    const err = t.throws(() => decodeMethodCall(bytes), { instanceOf: XmlRpcDecodeError, message }, what);
    t.is(err?.kind, 'xml', what);
  }
});

test('bytes: UTF-8 by default (invalid UTF-8 refused), ISO-8859-1 when declared, BOM skipped', (t) => {
  t.is(decodeMethodCall(Buffer.from(call('<param><value>é😀</value></param>'))).params[0], 'é😀');
  t.is(decodeMethodCall(Buffer.from(`\uFEFF${call('')}`)).methodName, 'm');
  t.throws(() => decodeMethodCall(Buffer.concat([Buffer.from(call('<param><value>')), Buffer.from([0xff, 0xfe]), Buffer.from('</value></param>')])), { instanceOf: XmlRpcDecodeError, message: /UTF-8/ });
  const latin = Buffer.from(`<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName><params><param><value>caf\xe9</value></param></params></methodCall>`, 'latin1');
  t.is(decodeMethodCall(latin).params[0], 'café');
  t.throws(() => decodeMethodCall(Buffer.from('<?xml version="1.0" encoding="EBCDIC"?><methodCall/>')), { instanceOf: XmlRpcDecodeError, message: /encoding/ });
});

// ---- what the encoder refuses -----------------------------------------------------------------

test('the encoder never emits nil and refuses what XML cannot carry', (t) => {
  for (const bad of [null, undefined, NaN, Infinity, 'a\u0001b', 'lone \uD800', '\uFFFE', new Date(NaN), new Date(Date.UTC(10000, 0, 1)), () => 1, new Map(), [1, [null]], { a: undefined }]) {
    t.throws(() => encodeValue(bad as XmlRpcValue), { instanceOf: XmlRpcEncodeError }, String(bad));
  }
  const cyclic: XmlRpcValue[] = [];
  cyclic.push(cyclic);
  t.throws(() => encodeValue(cyclic), { instanceOf: XmlRpcEncodeError, message: /deeper|cyclic/ });
  t.false(encodeResponse({ a: [1, 'x', true] }).toString().includes('nil'));
});

test('a fault message with characters XML cannot carry is still a well-formed fault', (t) => {
  const body = encodeFault({ faultCode: 104, faultString: 'bad \u0000 byte \uD800 & <tag>' });
  t.deepEqual(decodeMethodResponse(body), { fault: { faultCode: 104, faultString: 'bad \uFFFD byte \uFFFD & <tag>' } });
});

test("replies are byte for byte what Python's xmlrpclib (NodeManager's SimpleXMLRPCServer) sends for the same data", (t) => {
  // Python's Marshaller (2.x and 3.x alike for these types) lays out every value, member and name
  // on its own line; a raw comparison of NodeManager's replies with ours shows no difference.
  const script = [
    'import sys, json, xmlrpc.client as x',
    'cases = json.load(sys.stdin)',
    'out = [x.dumps((c,), methodresponse=True) for c in cases["values"]]',
    'out += [x.dumps(x.Fault(f[0], f[1])) for f in cases["faults"]]',
    'out.append(x.dumps((), "GetSSHKeys"))',
    'json.dump(out, sys.stdout)',
  ].join('\n');
  const values = [
    { myproj_myexp: 'ssh-rsa AAAAB3Nz a@b\nssh-rsa AAAAB3Nz c "d" <e> & f', other_slice: '' },
    { wlab_radio: 10501 },
    { name: 'myproj_myexp', keys: '', type: 'sliver.Emulab', timestamp: 1764550000, attributes: {}, delegations: [], ok: true, ratio: 1.5 },
    '**** GetSSHKeys\nReturn keys\n',
    ['a', 1, [true, false], {}],
    {},
  ];
  const faults: Array<[number, string]> = [[100, 'Invalid API method Nope.  Valid choices are A, B'], [102, 'Invalid argument: the first argument must be a sliver name.']];
  const python = JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify({ values, faults }) }).toString()) as string[];
  const ours = [
    ...values.map((v) => encodeResponse(v as XmlRpcValue).toString('utf8')),
    ...faults.map(([faultCode, faultString]) => encodeFault({ faultCode, faultString }).toString('utf8')),
    encodeMethodCall('GetSSHKeys', []),
  ];
  t.deepEqual(ours, python);
});
