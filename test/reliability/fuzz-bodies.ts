// Request bodies for the fuzz part: fast-check arbitraries for XML-RPC methodCall trees, mutations
// of valid calls (truncation, bit flips, huge numbers, bad UTF-8, odd encodings, entities, DOCTYPE),
// and a fixed list of heavy cases (billion laughs, deep nesting, huge strings, many params).
import fc from 'fast-check';

export interface FuzzBody {
  readonly label: string;
  readonly body: Buffer;
  /** A well-formed call of a zero-argument method: the reply must be a response, not a fault. */
  readonly expectValid: boolean;
  readonly contentType: string | undefined;
  readonly path: string;
}

const KNOWN = [
  'GetSSHKeys', 'GetXIDs', 'GetRecord', 'Help', 'Ticket', 'AdminTicket', 'Create', 'Destroy', 'Start', 'Stop',
  'ReCreate', 'GetRSpec', 'GetEffectiveRSpec', 'GetLoans', 'SetLoans', 'system.listMethods', 'system.methodHelp',
  'system.multicall', 'system.methodSignature',
];
const ZERO_ARG_VALID = new Set(['GetSSHKeys', 'GetXIDs', 'Help']);
const WEIRD_NAMES = [
  '', ' GetSSHKeys', 'GetSSHKeys ', 'getsshkeys', 'GETSSHKEYS', 'GetSSHKeys\n', '__proto__', 'constructor', 'toString',
  'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__', 'system', 'system.', '.GetSSHKeys', '../GetSSHKeys',
  'GetSSHKeys.call', 'system.multicall.apply', 'Help.constructor', 'then', 'Symbol(Symbol.iterator)',
];

export const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const tagName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_.-]{0,10}$/);
const isoDate = fc.date({ noInvalidDate: true, min: new Date(-62135596800000), max: new Date(253402300799000) }).map((d) =>
  d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, ''),
);

const scalar: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map((n) => `<int>${n}</int>`),
  fc.integer().map((n) => `<i4>${n}</i4>`),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map((n) => `<int>${n}</int>`),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => `<i8>${n}</i8>`),
  fc.constantFrom('0', '1', 'true', 'false', '2', '', ' 1 ').map((b) => `<boolean>${b}</boolean>`),
  fc.double().map((d) => `<double>${d}</double>`),
  fc.constantFrom('1e400', '-1e400', 'NaN', 'Infinity', '0x1p3', '1.', '.5', '--1', '').map((d) => `<double>${d}</double>`),
  text.map((s) => `<string>${xmlEscape(s)}</string>`),
  text.map((s) => xmlEscape(s)),
  text.map((s) => `<string>${s}</string>`),
  isoDate.map((d) => `<dateTime.iso8601>${d}</dateTime.iso8601>`),
  text.map((s) => `<dateTime.iso8601>${xmlEscape(s)}</dateTime.iso8601>`),
  fc.base64String({ maxLength: 40 }).map((s) => `<base64>${s}</base64>`),
  text.map((s) => `<base64>${xmlEscape(s)}</base64>`),
  fc.constantFrom('<nil/>', '<nil></nil>', '', '<string/>', '<int/>', '<struct/>', '<array/>', '<array><data/></array>'),
  fc.tuple(tagName, text).map(([t, s]) => `<${t}>${xmlEscape(s)}</${t}>`),
);

const memberName = fc.oneof(text, fc.constantFrom('__proto__', 'constructor', 'methodName', 'params', 'faultCode', ''));

const tree = fc.letrec<{ value: string; array: string; struct: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 5 }, scalar, tie('array'), tie('struct')),
  array: fc
    .array(tie('value'), { maxLength: 6 })
    .map((vs) => `<array><data>${vs.map((v) => `<value>${v}</value>`).join('')}</data></array>`),
  struct: fc
    .array(fc.tuple(memberName, tie('value')), { maxLength: 6 })
    .map((ms) => `<struct>${ms.map(([n, v]) => `<member><name>${xmlEscape(n)}</name><value>${v}</value></member>`).join('')}</struct>`),
}));

const methodName = fc.oneof(
  { weight: 7, arbitrary: fc.constantFrom(...KNOWN) },
  { weight: 2, arbitrary: text },
  { weight: 1, arbitrary: fc.constantFrom(...WEIRD_NAMES) },
);

const multicallArg = fc
  .array(
    fc.oneof(
      fc.tuple(methodName, fc.array(tree.value, { maxLength: 3 })).map(
        ([m, ps]) =>
          `<struct><member><name>methodName</name><value><string>${xmlEscape(m)}</string></value></member><member><name>params</name><value><array><data>${ps.map((p) => `<value>${p}</value>`).join('')}</data></array></value></member></struct>`,
      ),
      tree.value,
      fc.constant(
        '<struct><member><name>methodName</name><value>system.multicall</value></member><member><name>params</name><value><array><data><value><array><data/></array></value></data></array></value></member></struct>',
      ),
    ),
    { maxLength: 8 },
  )
  .map((items) => `<array><data>${items.map((i) => `<value>${i}</value>`).join('')}</data></array>`);

const DECLS = ['', '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8'?>", '<?xml version="1.1"?>', '<?xml version="1.0" standalone="yes"?>'];
const VALID_DECLS = new Set(DECLS.slice(0, 4));

/** Generated methodCall documents (mostly well-formed, with arbitrary values and names). */
export const generatedCall: fc.Arbitrary<FuzzBody> = fc
  .record({
    decl: fc.constantFrom(...DECLS),
    ws: fc.constantFrom('', '\n', '\r\n', '  ', '\t'),
    method: methodName,
    params: fc.oneof({ weight: 4, arbitrary: fc.array(tree.value, { maxLength: 4 }) }, { weight: 1, arbitrary: multicallArg.map((a) => [a]) }),
    form: fc.constantFrom('normal', 'normal', 'normal', 'self-closing', 'none', 'bare-values', 'text'),
    comment: fc.boolean(),
    path: fc.constantFrom('/', '/', '/', '/RPC2'),
  })
  .map(({ decl, ws, method, params, form, comment, path }) => {
    let paramsXml: string;
    switch (form) {
      case 'self-closing':
        paramsXml = params.length ? `<params>${params.map((p) => `<param><value>${p}</value></param>`).join('')}</params>` : '<params/>';
        break;
      case 'none':
        paramsXml = '';
        break;
      case 'bare-values':
        paramsXml = `<params>${params.map((p) => `<value>${p}</value>`).join('')}</params>`;
        break;
      case 'text':
        paramsXml = `<params>${params.join('')}</params>`;
        break;
      default:
        paramsXml = `<params>${ws}${params.map((p) => `<param>${ws}<value>${p}</value>${ws}</param>`).join(ws)}${ws}</params>`;
    }
    const body = `${decl}${ws}${comment ? '<!-- c -->' : ''}<methodCall>${ws}<methodName>${xmlEscape(method)}</methodName>${ws}${paramsXml}${ws}</methodCall>${ws}`;
    const expectValid =
      ZERO_ARG_VALID.has(method) && params.length === 0 && ['normal', 'self-closing', 'none'].includes(form) && VALID_DECLS.has(decl);
    return { label: `generated ${form}${params.length ? '' : ' no-params'} ${JSON.stringify(method).slice(0, 30)}`, body: Buffer.from(body, 'utf8'), expectValid, contentType: 'text/xml', path };
  });

const call = (method: string, params: string[] = []): string =>
  `<?xml version="1.0"?>\n<methodCall>\n  <methodName>${method}</methodName>\n  <params>${params.map((p) => `<param><value>${p}</value></param>`).join('')}</params>\n</methodCall>\n`;

/** Valid calls (some with the wrong arity) the mutations start from. */
export const BASES: string[] = [
  call('GetSSHKeys'),
  call('GetXIDs'),
  call('Help'),
  call('GetRecord'),
  '<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params/></methodCall>',
  '<methodCall><methodName>GetSSHKeys</methodName></methodCall>',
  call('GetSSHKeys', ['<int>12345</int>', '<double>3.5</double>']),
  call('Ticket', ['<string>a ticket</string>']),
  call('SetLoans', ['<string>wlab_radio</string>', '<array><data><value><int>1</int></value></data></array>']),
  call('GetRSpec', ['<string>wlab_radio</string>']),
  call('system.methodHelp', ['<string>GetSSHKeys</string>']),
  call('system.multicall', [
    '<array><data><value><struct><member><name>methodName</name><value><string>GetSSHKeys</string></value></member><member><name>params</name><value><array><data/></array></value></member></struct></value></data></array>',
  ]),
  call('Create', [
    '<struct><member><name>name</name><value><string>wlab_radio</string></value></member><member><name>n</name><value><i4>-7</i4></value></member><member><name>b</name><value><boolean>1</boolean></value></member><member><name>d</name><value><dateTime.iso8601>20240101T00:00:00</dateTime.iso8601></value></member><member><name>x</name><value><base64>aGVsbG8=</base64></value></member></struct>',
  ]),
];

type Mutation = (b: Buffer, a: number, c: number) => { body: Buffer; label: string; contentType?: string };

const HUGE_NUMBERS = [
  '<int>99999999999999999999999999999</int>', '<i4>-2147483649</i4>', '<i4>2147483648</i4>', '<int>-0</int>',
  '<double>1e400</double>', '<double>-1e-400</double>', '<double>NaN</double>', '<i8>9223372036854775808</i8>',
  '<int>0x10</int>', '<int> 1 </int>', '<int>١٢</int>', '<int>1e3</int>', `<int>${'9'.repeat(5000)}</int>`,
  `<double>${'1'.repeat(400)}.${'1'.repeat(400)}</double>`, '<int></int>', '<int>+</int>',
];
const BAD_UTF8 = [[0xc3, 0x28], [0xff], [0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x00], [0xc2]];
const ENTITIES = [
  '&amp;', '&#0;', '&#xD800;', '&#1114112;', '&#x110000;', '&nbsp;', '&unknown;', '&#65;', '&#x41;', '&', '&#;', '&#x;',
  '&lt;methodCall&gt;', '&#99999999999999999999;', '&#x1F600;', '&#8;', '&amp',
];
const ODD_TEXTS = ['<![CDATA[GetSSHKeys]]>', '<!-- -->', '<?pi x?>', ']]>', '<!-- -- -->', '\u0000', '\uFFFE', '\uFEFF', '\r', '\u2028'];

function at(b: Buffer, a: number): number {
  return b.length ? a % (b.length + 1) : 0;
}

function splice(b: Buffer, pos: number, del: number, ins: Buffer): Buffer {
  return Buffer.concat([b.subarray(0, pos), ins, b.subarray(Math.min(b.length, pos + del))]);
}

/** Insert at a position inside element text (after a '>' when there is one). */
function textPos(b: Buffer, a: number): number {
  const gts: number[] = [];
  for (let i = 0; i < b.length; i++) if (b[i] === 0x3e) gts.push(i + 1);
  return gts.length ? gts[a % gts.length]! : at(b, a);
}

function withDecl(s: string, decl: string): string {
  return decl + s.replace(/^<\?xml[^>]*\?>/, '');
}

const MUTATIONS: Mutation[] = [
  (b, a) => ({ body: b.subarray(0, at(b, a)), label: 'truncated' }),
  (b, a, c) => {
    const out = Buffer.from(b);
    const n = (c % 8) + 1;
    let x = a;
    for (let i = 0; i < n && out.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[x % out.length]! ^= 1 << (x >>> 8) % 8;
    }
    return { body: out, label: `${n} bit flip(s)` };
  },
  (b, a, c) => ({ body: splice(b, at(b, a), 0, Buffer.from(Array.from({ length: (c % 16) + 1 }, (_, i) => (a * 31 + i * 97 + c) & 0xff))), label: 'random bytes inserted' }),
  (b, a, c) => ({ body: splice(b, at(b, a), (c % 32) + 1, Buffer.alloc(0)), label: 'bytes deleted' }),
  (b, a, c) => {
    const p = at(b, a);
    return { body: splice(b, p, 0, b.subarray(p, p + (c % 64) + 1)), label: 'range duplicated' };
  },
  (b, a, c) => {
    const s = b.toString('utf8');
    const num = HUGE_NUMBERS[c % HUGE_NUMBERS.length]!;
    const replaced = s.replace(/<params>|<params\/>/, (m) => (m === '<params/>' ? `<params><param><value>${num}</value></param></params>` : `${m}<param><value>${num}</value></param>`));
    return { body: Buffer.from(replaced === s ? s.replace('</methodName>', `</methodName><params><param><value>${num}</value></param></params>`) : replaced), label: `huge number ${num.slice(0, 30)}` };
  },
  (b, a, c) => ({ body: splice(b, textPos(b, a), 0, Buffer.from(BAD_UTF8[c % BAD_UTF8.length]!)), label: `bad UTF-8 ${Buffer.from(BAD_UTF8[c % BAD_UTF8.length]!).toString('hex')}` }),
  (b, _a, c) => {
    const s = b.toString('utf8');
    switch (c % 8) {
      case 0:
        return { body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(withDecl(s, '<?xml version="1.0" encoding="UTF-16"?>'), 'utf16le')]), label: 'UTF-16LE with BOM' };
      case 1: {
        const le = Buffer.from(withDecl(s, '<?xml version="1.0" encoding="UTF-16"?>'), 'utf16le');
        return { body: Buffer.concat([Buffer.from([0xfe, 0xff]), le.swap16()]), label: 'UTF-16BE with BOM' };
      }
      case 2:
        return { body: Buffer.from(s, 'utf16le'), label: 'UTF-16LE without BOM' };
      case 3:
        return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]), label: 'UTF-8 BOM' };
      case 4:
        return {
          body: Buffer.from(withDecl(s, '<?xml version="1.0" encoding="ISO-8859-1"?>').replace('</methodName>', '</methodName><!-- caf\u00e9 \u00ff -->'), 'latin1'),
          label: 'latin1 declaration',
        };
      case 5:
        return { body: Buffer.from(withDecl(s, '<?xml version="1.0" encoding="EBCDIC-US"?>')), label: 'EBCDIC declaration' };
      case 6:
        return { body: Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from(s, 'utf16le')]), label: 'UTF-32LE BOM' };
      default:
        return { body: b, label: 'charset=utf-16 content type', contentType: 'text/xml; charset=utf-16' };
    }
  },
  (b, a, c) => {
    const e = ENTITIES[c % ENTITIES.length]!;
    return { body: splice(b, textPos(b, a), 0, Buffer.from(e)), label: `entity ${e.slice(0, 20)}` };
  },
  (b, _a, c) => {
    const s = b.toString('utf8');
    const variants = [
      `<!DOCTYPE methodCall [<!ENTITY m "GetSSHKeys">]>${s.replace(/<methodName>[^<]*<\/methodName>/, '<methodName>&m;</methodName>')}`,
      `<!DOCTYPE methodCall SYSTEM "http://127.0.0.1:1/x.dtd">${s}`,
      `<!DOCTYPE methodCall [<!ELEMENT methodCall ANY>]>${s}`,
      `<!DOCTYPE methodCall [<!ENTITY % p "x"> %p;]>${s}`,
      `<!DOCTYPE methodCall PUBLIC "-//x//y" "file:///dev/zero">${s}`,
      `<!DOCTYPE x [<!ATTLIST methodCall a CDATA "d">]>${s}`,
    ];
    return { body: Buffer.from(withDecl(variants[c % variants.length]!, '<?xml version="1.0"?>')), label: `DOCTYPE variant ${c % variants.length}` };
  },
  (b, a, c) => {
    const t = ODD_TEXTS[c % ODD_TEXTS.length]!;
    return { body: splice(b, textPos(b, a), 0, Buffer.from(t)), label: `odd markup ${JSON.stringify(t)}` };
  },
  (b, _a, c) => {
    const s = b.toString('utf8');
    const variants = [
      s.replace('<methodCall>', '<methodCall a="1" b="2">'),
      s.replace('<methodCall>', '<x:methodCall xmlns:x="urn:x">').replace('</methodCall>', '</x:methodCall>'),
      s + s,
      s + '<extra/>',
      s + 'trailing garbage',
      s.replace('</methodName>', '</methodName><methodName>Help</methodName>'),
      s.replace(/<methodName>[^<]*<\/methodName>/, ''),
      s.replace('</methodCall>', ''),
      s.replace('<params>', '<params><params>'),
      s.replace('methodCall', 'methodResponse').replace('methodCall', 'methodResponse'),
      s.replace(/\n/g, '\r\n'),
      s.toUpperCase(),
      '',
      ' ',
      '{"method":"GetSSHKeys","params":[]}',
      '<html><body>GetSSHKeys</body></html>',
      'GetSSHKeys',
      s.replace('<methodName>', '<methodName><![CDATA[').replace('</methodName>', ']]></methodName>'),
    ];
    return { body: Buffer.from(variants[c % variants.length]!), label: `structure variant ${c % variants.length}` };
  },
];

/** Mutations of valid calls. */
export const mutatedCall: fc.Arbitrary<FuzzBody> = fc
  .record({ base: fc.constantFrom(...BASES), op: fc.nat({ max: MUTATIONS.length - 1 }), a: fc.nat(), c: fc.nat(), path: fc.constantFrom('/', '/', '/RPC2', '/nope', '/../etc/passwd', '/RPC2?x=1') })
  .map(({ base, op, a, c, path }) => {
    const m = MUTATIONS[op]!(Buffer.from(base, 'utf8'), a, c);
    return { label: m.label, body: m.body, expectValid: false, contentType: m.contentType ?? 'text/xml', path };
  });

/** Content types other than text/xml, on valid calls. */
export const oddContentType: fc.Arbitrary<FuzzBody> = fc
  .record({ base: fc.constantFrom(...BASES), ct: fc.constantFrom(undefined, '', 'application/xml', 'text/plain', 'application/json', 'multipart/form-data; boundary=x', 'text/xml; charset=latin1', 'text/xml; charset=bogus', 'application/x-www-form-urlencoded') })
  .map(({ base, ct }) => ({ label: `content-type ${JSON.stringify(ct)}`, body: Buffer.from(base), expectValid: false, contentType: ct, path: '/' }));

/** Heavy cases, each sent once: bounded in size (at most ~34 MB). */
export function heavyBodies(quick: boolean, canaryFile: string): FuzzBody[] {
  const mk = (label: string, body: string | Buffer): FuzzBody => ({ label, body: typeof body === 'string' ? Buffer.from(body) : body, expectValid: false, contentType: 'text/xml', path: '/' });
  const openA = '<value><array><data>';
  const closeA = '</data></array></value>';
  const openS = '<value><struct><member><name>a</name>';
  const closeS = '</member></struct></value>';
  const nested = (depth: number, open: string, close: string): string =>
    `<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params><param>${open.repeat(depth)}<value><int>1</int></value>${close.repeat(depth)}</param></params></methodCall>`;
  const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('')}]><methodCall><methodName>GetSSHKeys</methodName><params><param><value><string>&lol9;</string></value></param></params></methodCall>`;
  const big = 'A'.repeat(50_000);
  const quadratic = `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "${big}">]><methodCall><methodName>GetSSHKeys</methodName><params><param><value><string>${'&a;'.repeat(20_000)}</string></value></param></params></methodCall>`;
  const str = (n: number): string => `<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params><param><value><string>${'x'.repeat(n)}</string></value></param></params></methodCall>`;
  const params = (n: number): string => `<?xml version="1.0"?><methodCall><methodName>GetSSHKeys</methodName><params>${'<param><value><int>1</int></value></param>'.repeat(n)}</params></methodCall>`;
  const list: FuzzBody[] = [
    mk('billion laughs', lol),
    mk('quadratic blow-up (50 KB entity x 20,000)', quadratic),
    mk('XXE file entity (canary)', `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file://${canaryFile}">]><methodCall><methodName>system.methodHelp</methodName><params><param><value><string>&x;</string></value></param></params></methodCall>`),
    mk('XXE parameter entity', `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY % x SYSTEM "file://${canaryFile}"> %x;]><methodCall><methodName>GetSSHKeys</methodName></methodCall>`),
    mk('nesting 1,000 arrays', nested(1000, openA, closeA)),
    mk('nesting 10,000 arrays', nested(10_000, openA, closeA)),
    mk('nesting 10,000 structs', nested(10_000, openS, closeS)),
    mk('200,000 unclosed <value>', `<methodCall><methodName>GetSSHKeys</methodName><params><param>${'<value>'.repeat(200_000)}`),
    mk('string 1 MB', str(1 << 20)),
    mk('10,000 params', params(10_000)),
    mk('methodName 1 MB', `<methodCall><methodName>${'G'.repeat(1 << 20)}</methodName></methodCall>`),
    mk('tag name 256 KB', `<methodCall><${'t'.repeat(1 << 18)}/></methodCall>`),
    mk('10,000 attributes', `<methodCall ${Array.from({ length: 10_000 }, (_, i) => `a${i}="${i}"`).join(' ')}><methodName>GetSSHKeys</methodName></methodCall>`),
    mk('one 1 MB comment', `<methodCall><!--${'-x'.repeat(1 << 19)}--><methodName>GetSSHKeys</methodName></methodCall>`),
  ];
  if (!quick) {
    list.push(
      mk('nesting 100,000 arrays', nested(100_000, openA, closeA)),
      mk('string 8 MB', str(8 << 20)),
      mk('string 32 MB', str(32 << 20)),
      mk('200,000 params', params(200_000)),
      mk('100,000 members', `<methodCall><methodName>Create</methodName><params><param><value><struct>${Array.from({ length: 100_000 }, (_, i) => `<member><name>m${i}</name><value>${i}</value></member>`).join('')}</struct></value></param></params></methodCall>`),
      mk('100,000 duplicate members', `<methodCall><methodName>Create</methodName><params><param><value><struct>${'<member><name>a</name><value>1</value></member>'.repeat(100_000)}</struct></value></param></params></methodCall>`),
      mk('4 MB of whitespace before the root', ' '.repeat(4 << 20) + BASES[0]),
      mk('system.multicall of 10,000 GetSSHKeys', `<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>${'<value><struct><member><name>methodName</name><value>GetSSHKeys</value></member><member><name>params</name><value><array><data/></array></value></member></struct></value>'.repeat(10_000)}</data></array></value></param></params></methodCall>`),
      mk('system.multicall nested 2,000 deep', (() => {
        let inner = '<array><data/></array>';
        for (let i = 0; i < 2000; i++) inner = `<array><data><value><struct><member><name>methodName</name><value>system.multicall</value></member><member><name>params</name><value><array><data><value>${inner}</value></data></array></value></member></struct></value></data></array>`;
        return `<methodCall><methodName>system.multicall</methodName><params><param><value>${inner}</value></param></params></methodCall>`;
      })()),
      mk('base64 8 MB', `<methodCall><methodName>Ticket</methodName><params><param><value><base64>${'QUFB'.repeat(2 << 20)}</base64></value></param></params></methodCall>`),
      mk('1,000,000 entity references', `<methodCall><methodName>Help</methodName><params><param><value><string>${'&amp;'.repeat(1_000_000)}</string></value></param></params></methodCall>`),
    );
  }
  return list;
}

/** Valid zero-argument calls in every accepted form: these must get a response, never a fault. */
export const validCall: fc.Arbitrary<FuzzBody> = fc
  .record({
    decl: fc.constantFrom(...VALID_DECLS),
    ws: fc.constantFrom('', '\n', '\r\n', '  ', '\t'),
    method: fc.constantFrom(...ZERO_ARG_VALID),
    form: fc.constantFrom('<params></params>', '<params/>', '', '<params>\n</params>'),
    // (Processing instructions are refused by design, like DOCTYPE: not part of this set.)
    comment: fc.constantFrom('', '<!-- c -->'),
    path: fc.constantFrom('/', '/RPC2'),
  })
  .map(({ decl, ws, method, form, comment, path }) => ({
    label: `valid ${method}`,
    body: Buffer.from(`${decl}${ws}<methodCall>${ws}<methodName>${method}</methodName>${ws}${form}${ws}</methodCall>${ws}${comment}`, 'utf8'),
    expectValid: true,
    contentType: 'text/xml',
    path,
  }));
