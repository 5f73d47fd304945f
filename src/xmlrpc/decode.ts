// XML-RPC decoding with saxes, inside fixed bounds. Refused outright: any DOCTYPE (so no DTD and
// no entity definitions: a billion-laughs document stops at its DOCTYPE), entity references other
// than the five predefined ones and numeric character references, processing instructions other
// than the XML declaration. Depth, element count and text sizes are counted while parsing.
// The only error thrown is XmlRpcDecodeError.
import { isUtf8 } from 'node:buffer';
import { SaxesParser } from 'saxes';
import {
  XmlRpcDecodeError,
  defaultDecodeLimits,
  type DecodeErrorKind,
  type DecodeLimits,
  type FaultValue,
  type MethodCall,
  type MethodResponse,
  type XmlRpcStruct,
  type XmlRpcValue,
} from './types.js';

/** Hard ceiling on depth whatever the caller asks (conversion below recurses once per level). */
const DEPTH_CEILING = 1000;

interface Element {
  readonly name: string;
  readonly children: Element[];
  text: string;
}

const fail = (kind: DecodeErrorKind, message: string): never => {
  throw new XmlRpcDecodeError(kind, message);
};

const WHITESPACE = /^[ \t\r\n]*$/;

const SUPPORTED_ENCODINGS = 'UTF-8, US-ASCII, ISO-8859-1, UTF-16';

/** The encoding named by an XML declaration at the start of `head` (already decoded), lowercased. */
function declaredEncoding(head: string): string | undefined {
  const m = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']/.exec(head);
  return m ? m[1]!.toLowerCase() : undefined;
}

function utf16(buf: Buffer, bigEndian: boolean, skip: number): string {
  if ((buf.length - skip) % 2 !== 0) fail('xml', 'request body is not valid UTF-16 (an odd number of bytes)');
  try {
    return new TextDecoder(bigEndian ? 'utf-16be' : 'utf-16le', { fatal: true, ignoreBOM: true }).decode(buf.subarray(skip));
  } catch {
    return fail('xml', 'request body is not valid UTF-16');
  }
}

/**
 * Bytes to text, as XML 1.0 (section 4.3.3, appendix F) reads them: a byte order mark (UTF-8,
 * UTF-16 LE/BE) decides; without one, "<?" in UTF-16 is recognised, else the XML declaration
 * names the encoding (UTF-8 when it names none). A declaration that contradicts the bytes, or
 * names an encoding not supported here, is refused with a message naming the encoding.
 */
function bytesToText(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let text: string;
  let family: 'utf-8' | 'utf-16';
  if (buf[0] === 0xfe && buf[1] === 0xff) [text, family] = [utf16(buf, true, 2), 'utf-16'];
  else if (buf[0] === 0xff && buf[1] === 0xfe) [text, family] = [utf16(buf, false, 2), 'utf-16'];
  else if (buf[0] === 0x00 && buf[1] === 0x3c && buf[2] === 0x00 && buf[3] === 0x3f) [text, family] = [utf16(buf, true, 0), 'utf-16'];
  else if (buf[0] === 0x3c && buf[1] === 0x00 && buf[2] === 0x3f && buf[3] === 0x00) [text, family] = [utf16(buf, false, 0), 'utf-16'];
  else {
    const bom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    const declared = declaredEncoding(buf.toString('latin1', bom, Math.min(buf.length, bom + 256)));
    switch (declared) {
      case undefined:
      case 'utf-8':
      case 'utf8':
      case 'us-ascii':
      case 'ascii':
        if (!isUtf8(buf)) fail('xml', 'request body is not valid UTF-8');
        return buf.toString('utf8', bom);
      case 'iso-8859-1':
      case 'latin1':
      case 'latin-1':
        if (bom) fail('xml', `the XML declaration names ${JSON.stringify(declared)} but the body starts with a UTF-8 byte order mark`);
        return buf.toString('latin1');
      case 'utf-16':
      case 'utf-16le':
      case 'utf-16be':
        return fail('xml', `the XML declaration names ${JSON.stringify(declared)} but the body is not UTF-16 (no byte order mark, no UTF-16 "<?")`);
      default:
        return fail('xml', `unsupported encoding ${JSON.stringify(declared)} (supported: ${SUPPORTED_ENCODINGS})`);
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const declared = declaredEncoding(text.slice(0, 256));
  if (declared !== undefined && !declared.startsWith(family === 'utf-16' ? 'utf-16' : 'utf')) {
    fail('xml', `the XML declaration names ${JSON.stringify(declared)} but the body is ${family.toUpperCase()}`);
  }
  return text;
}

/** A saxes parser building a small element tree within the limits; `done()` gives the root. */
function treeBuilder(limits: DecodeLimits): { parser: SaxesParser; done(): Element } {
  const maxDepth = Math.min(limits.maxDepth, DEPTH_CEILING);
  const { maxElements, maxStringLength } = limits;
  const stack: Element[] = [];
  let root: Element | undefined;
  let elements = 0;

  const parser = new SaxesParser({ position: true });
  parser.on('error', (err) => fail('xml', `not well-formed XML: ${err.message}`));
  parser.on('doctype', () => fail('forbidden', 'DOCTYPE is not allowed in XML-RPC'));
  parser.on('processinginstruction', (pi) => fail('forbidden', `processing instruction <?${pi.target}?> is not allowed`));
  parser.on('opentag', (tag) => {
    if (++elements > maxElements) fail('limit', `more than ${maxElements} elements`);
    if (stack.length >= maxDepth) fail('limit', `elements nested deeper than ${maxDepth}`);
    const el: Element = { name: tag.name, children: [], text: '' };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    stack.push(el);
  });
  const onText = (t: string): void => {
    const top = stack[stack.length - 1];
    if (!top) return; // whitespace around the root; saxes reports anything else
    if (top.text.length + t.length > maxStringLength) fail('limit', `text longer than ${maxStringLength} characters in <${top.name}>`);
    top.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('closetag', () => {
    const el = stack.pop();
    if (stack.length === 0) root = el;
  });
  return { parser, done: () => root ?? fail('xml', 'no root element') };
}

function documentText(input: string | Uint8Array): string {
  const text = typeof input === 'string' ? input : bytesToText(input);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Parse into a small element tree, within the limits. */
function parseTree(input: string | Uint8Array, limits: DecodeLimits): Element {
  const { parser, done } = treeBuilder(limits);
  parser.write(documentText(input)).close();
  return done();
}

/**
 * The same, `slice` characters at a time, yielding to the event loop between slices: a large
 * document (30k elements in 750 KB took ~1 s to parse at once) never holds the loop for more
 * than one slice (a few milliseconds).
 */
async function parseTreeSliced(input: string | Uint8Array, limits: DecodeLimits, slice: number): Promise<Element> {
  const text = documentText(input);
  const { parser, done } = treeBuilder(limits);
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + slice);
    // Never split a surrogate pair between two writes.
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
    parser.write(text.slice(at, end));
    at = end;
    if (at < text.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  parser.close();
  return done();
}

// ---- from the element tree to values ---------------------------------------------------------

function noText(el: Element): void {
  if (el.text && !WHITESPACE.test(el.text)) fail('structure', `unexpected text in <${el.name}>`);
}

function leafText(el: Element): string {
  if (el.children.length > 0) fail('structure', `<${el.name}> must not contain <${el.children[0]!.name}>`);
  return el.text;
}

function only(el: Element, name: string): Element {
  noText(el);
  if (el.children.length !== 1 || el.children[0]!.name !== name) fail('structure', `<${el.name}> must contain exactly one <${name}>`);
  return el.children[0]!;
}

const INTEGER = /^[ \t\r\n]*([+-]?[0-9]+)[ \t\r\n]*$/;
const DOUBLE = /^[ \t\r\n]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t\r\n]*$/;
const DATETIME = /^[ \t\r\n]*(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?[ \t\r\n]*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function integer(el: Element, min: number, max: number): number {
  const m = INTEGER.exec(leafText(el));
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= min && n <= max)) fail('structure', `<${el.name}> holds ${JSON.stringify(el.text.slice(0, 40))}, not an integer in [${min}, ${max}]`);
  return n;
}

function dateTime(el: Element): Date {
  const m = DATETIME.exec(leafText(el));
  if (!m) return fail('structure', `<dateTime.iso8601> holds ${JSON.stringify(el.text.slice(0, 40))}, not YYYYMMDDTHH:MM:SS`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, ms);
  if (mo < 1 || mo > 12 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    fail('structure', `<dateTime.iso8601> holds an impossible date ${JSON.stringify(el.text.trim())}`);
  }
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    date.setTime(date.getTime() - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000);
  }
  return date;
}

function value(el: Element): XmlRpcValue {
  if (el.children.length === 0) return el.text; // untyped <value>text</value> is a string
  const typed = only(el, el.children[0]!.name);
  const name = typed.name;
  switch (name) {
    case 'string':
      return leafText(typed);
    case 'int':
    case 'i4':
      return integer(typed, -2147483648, 2147483647);
    case 'boolean': {
      const t = leafText(typed).trim();
      if (t === '1') return true;
      if (t === '0') return false;
      return fail('structure', `<boolean> holds ${JSON.stringify(t.slice(0, 40))}, not 0 or 1`);
    }
    case 'double': {
      const m = DOUBLE.exec(leafText(typed));
      const n = m ? Number(m[1]) : NaN;
      if (!Number.isFinite(n)) fail('structure', `<double> holds ${JSON.stringify(typed.text.slice(0, 40))}, not a finite number`);
      return n;
    }
    case 'dateTime.iso8601':
      return dateTime(typed);
    case 'base64': {
      const b64 = leafText(typed).replace(/[ \t\r\n]+/g, '');
      if (!BASE64.test(b64)) fail('structure', '<base64> does not hold base64');
      return new Uint8Array(Buffer.from(b64, 'base64'));
    }
    case 'struct':
      return struct(typed);
    case 'array': {
      const data = only(typed, 'data');
      noText(data);
      return data.children.map((v) => (v.name === 'value' ? value(v) : fail('structure', `<data> must contain only <value>, not <${v.name}>`)));
    }
  }
  // Extensions accepted on input: nil and i8, also namespaced (ex:nil, ex:i8).
  const local = name.slice(name.indexOf(':') + 1);
  if (local === 'nil') {
    if (leafText(typed) && !WHITESPACE.test(typed.text)) fail('structure', '<nil> must be empty');
    return null;
  }
  if (local === 'i8') return integer(typed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return fail('structure', `unknown value type <${name}>`);
}

function struct(el: Element): XmlRpcStruct {
  noText(el);
  const out: XmlRpcStruct = {};
  for (const member of el.children) {
    if (member.name !== 'member') fail('structure', `<struct> must contain only <member>, not <${member.name}>`);
    noText(member);
    let name: string | undefined;
    let v: Element | undefined;
    for (const c of member.children) {
      if (c.name === 'name' && name === undefined) name = leafText(c);
      else if (c.name === 'value' && v === undefined) v = c;
      else fail('structure', `<member> must contain one <name> and one <value>, not another <${c.name}>`);
    }
    if (name === undefined || v === undefined) return fail('structure', '<member> must contain one <name> and one <value>');
    // defineProperty: a member called "__proto__" is data, never the object's prototype.
    Object.defineProperty(out, name, { value: value(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function params(el: Element): XmlRpcValue[] {
  noText(el);
  return el.children.map((p) => (p.name === 'param' ? value(only(p, 'value')) : fail('structure', `<params> must contain only <param>, not <${p.name}>`)));
}

function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof XmlRpcDecodeError) throw err;
    // Nothing else is expected; if a library throws anyway, it is still a refused document.
    throw new XmlRpcDecodeError('xml', `not well-formed XML: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// The shape nearly every call takes (Python's xmlrpc.client sending GetSSHKeys()): an optional
// XML declaration, a method name and no parameters. Only well-formed documents match (ASCII,
// no references, no comments), so matching is parsing; anything else goes through saxes.
const NO_PARAMS_CALL =
  /^(?:<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.0\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])(?:utf-8|UTF-8)\2)?[ \t\r\n]*\?>)?[ \t\r\n]*<methodCall>[ \t\r\n]*<methodName>([A-Za-z0-9_.:/]{1,256})<\/methodName>[ \t\r\n]*(?:<params>[ \t\r\n]*<\/params>[ \t\r\n]*|<params\/>[ \t\r\n]*)?<\/methodCall>[ \t\r\n]*$/;
const FAST_PATH_MAX = 1024;

function fastNoParams(body: string | Uint8Array): MethodCall | undefined {
  if (body.length > FAST_PATH_MAX) return undefined;
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  const m = NO_PARAMS_CALL.exec(text);
  return m ? { methodName: m[3]!, params: [] } : undefined;
}

/** The methodCall a document's element tree holds. */
function methodCallOf(root: Element): MethodCall {
  if (root.name !== 'methodCall') fail('structure', `root element is <${root.name}>, not <methodCall>`);
  noText(root);
  let methodName: string | undefined;
  let ps: XmlRpcValue[] | undefined;
  for (const c of root.children) {
    // The name exactly as sent (NodeManager neither trims nor checks it: a blank name is an
    // unknown method, fault 100, answered by the dispatcher).
    if (c.name === 'methodName' && methodName === undefined) methodName = leafText(c);
    else if (c.name === 'params' && ps === undefined) ps = params(c);
    else fail('structure', `<methodCall> must contain one <methodName> and at most one <params>, not another <${c.name}>`);
  }
  if (methodName === undefined) return fail('structure', '<methodCall> has no method name (no <methodName>)');
  return { methodName, params: ps ?? [] };
}

/** Decode a methodCall document (string, or the request's bytes). */
export function decodeMethodCall(body: string | Uint8Array, limits: Partial<DecodeLimits> = {}): MethodCall {
  return guarded(() => {
    const bounds = { ...defaultDecodeLimits, ...limits };
    const fast = bounds.maxDepth >= 3 && bounds.maxElements >= 4 ? fastNoParams(body) : undefined;
    if (fast) return fast;
    return methodCallOf(parseTree(body, bounds));
  });
}

/** Characters parsed per event-loop turn by decodeMethodCallSliced. */
export const DECODE_SLICE_CHARS = 4096;

/**
 * decodeMethodCall for the server: a document longer than one slice is parsed a slice per
 * event-loop turn, so decoding a 1 MiB request never blocks the other connections.
 */
export async function decodeMethodCallSliced(body: string | Uint8Array, limits: Partial<DecodeLimits> = {}, slice = DECODE_SLICE_CHARS): Promise<MethodCall> {
  if (body.length <= slice) return decodeMethodCall(body, limits);
  const bounds = { ...defaultDecodeLimits, ...limits };
  let root: Element;
  try {
    root = await parseTreeSliced(body, bounds, slice);
  } catch (err) {
    return guarded(() => {
      throw err;
    });
  }
  return guarded(() => methodCallOf(root));
}

/** Decode a methodResponse document (clients and tests). */
export function decodeMethodResponse(body: string | Uint8Array, limits: Partial<DecodeLimits> = {}): MethodResponse {
  return guarded(() => {
    const root = parseTree(body, { ...defaultDecodeLimits, ...limits });
    if (root.name !== 'methodResponse') fail('structure', `root element is <${root.name}>, not <methodResponse>`);
    const inner = only(root, root.children[0]?.name === 'fault' ? 'fault' : 'params');
    if (inner.name === 'params') return { params: params(inner) };
    const f = value(only(inner, 'value'));
    const code = (f as XmlRpcStruct | null)?.['faultCode'];
    const text = (f as XmlRpcStruct | null)?.['faultString'];
    if (typeof code !== 'number' || typeof text !== 'string') fail('structure', '<fault> must hold a struct with faultCode and faultString');
    const fault: FaultValue = { faultCode: code as number, faultString: text as string };
    return { fault };
  });
}
