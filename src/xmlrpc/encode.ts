// XML-RPC encoding: values, methodResponse (params or fault) and methodCall documents.
// Only spec types are emitted (never nil); strings are escaped and must be XML 1.0 characters.
// The layout is Python's xmlrpclib Marshaller's, byte for byte (each value, member and name on a
// line of its own), so a reply compares equal to NodeManager's (SimpleXMLRPCServer) for the same data.
import { XmlRpcEncodeError, type FaultValue, type XmlRpcValue } from './types.js';

const HEADER = "<?xml version='1.0'?>\n";
/** Structures nested deeper than this (or cyclic) are refused. */
const MAX_ENCODE_DEPTH = 100;

// Characters XML 1.0 allows: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
// With the u flag a lone surrogate is one code point outside these ranges, so it matches too.
const INVALID_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const INVALID_XML_CHARS = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const NEEDS_ESCAPE = /[&<>\r]/;
const ESCAPES = /[&<>\r]/g;
const ESCAPE_OF: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };

/** True when every character of `s` may appear in an XML 1.0 document. */
export function isXmlText(s: string): boolean {
  return !INVALID_XML_CHAR.test(s);
}

/** `s` with every character XML 1.0 forbids replaced by U+FFFD (for messages built from arbitrary text). */
export function sanitizeXmlText(s: string): string {
  return isXmlText(s) ? s : s.replace(INVALID_XML_CHARS, '\uFFFD');
}

/** Escape text content: & < > and CR (as &#13; so it survives end-of-line normalisation). */
export function escapeXmlText(s: string): string {
  if (!isXmlText(s)) {
    const bad = INVALID_XML_CHAR.exec(s)![0].codePointAt(0)!;
    throw new XmlRpcEncodeError(`string holds U+${bad.toString(16).toUpperCase().padStart(4, '0')}, which XML 1.0 cannot carry`);
  }
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPES, (c) => ESCAPE_OF[c]!) : s;
}

/** A finite double in plain decimal notation ("1.5", "1000000000000000000000.0", "0.0001"), exact. */
export function formatDouble(n: number): string {
  if (!Number.isFinite(n)) throw new XmlRpcEncodeError(`${n} has no XML-RPC form (double must be finite)`);
  if (Object.is(n, -0)) return '-0.0';
  const s = String(n);
  const e = s.indexOf('e');
  if (e < 0) return s.includes('.') ? s : `${s}.0`;
  // Shortest round-trip form is "[-]d[.ddd]e[+-]x": shift the decimal point by hand.
  const sign = s.startsWith('-') ? '-' : '';
  const mantissa = s.slice(sign.length, e);
  const exp = Number(s.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  const point = (dot < 0 ? mantissa.length : dot) + exp; // digits before the decimal point
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** dateTime.iso8601 as Python's xmlrpc.client writes it: YYYYMMDDTHH:MM:SS (UTC, whole seconds). */
export function formatDateTime(d: Date): string {
  const year = d.getUTCFullYear();
  if (Number.isNaN(year)) throw new XmlRpcEncodeError('invalid Date has no XML-RPC form');
  if (year < 0 || year > 9999) throw new XmlRpcEncodeError(`year ${year} does not fit dateTime.iso8601`);
  return (
    `${pad(year, 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null (nil is never emitted)';
  if (v === undefined) return 'undefined';
  return typeof v === 'object' ? `object ${Object.prototype.toString.call(v)}` : typeof v;
}

function encodeInto(out: string[], v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      out.push('<value><string>', escapeXmlText(v), '</string></value>\n');
      return;
    case 'number':
      if (Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 && !Object.is(v, -0)) {
        out.push('<value><int>', String(v), '</int></value>\n');
      } else {
        out.push('<value><double>', formatDouble(v), '</double></value>\n');
      }
      return;
    case 'boolean':
      out.push(v ? '<value><boolean>1</boolean></value>\n' : '<value><boolean>0</boolean></value>\n');
      return;
    case 'object': {
      if (v === null) break;
      if (depth >= MAX_ENCODE_DEPTH) throw new XmlRpcEncodeError(`value nested deeper than ${MAX_ENCODE_DEPTH} levels (or cyclic)`);
      if (Array.isArray(v)) {
        out.push('<value><array><data>\n');
        for (const item of v) encodeInto(out, item, depth + 1);
        out.push('</data></array></value>\n');
        return;
      }
      if (v instanceof Date) {
        out.push('<value><dateTime.iso8601>', formatDateTime(v), '</dateTime.iso8601></value>\n');
        return;
      }
      if (v instanceof Uint8Array) {
        out.push('<value><base64>\n', Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'), '\n</base64></value>\n');
        return;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) break;
      out.push('<value><struct>\n');
      for (const name of Object.keys(v)) {
        out.push('<member>\n<name>', escapeXmlText(name), '</name>\n');
        encodeInto(out, (v as Record<string, unknown>)[name], depth + 1);
        out.push('</member>\n');
      }
      out.push('</struct></value>\n');
      return;
    }
  }
  throw new XmlRpcEncodeError(`${describe(v)} has no XML-RPC form`);
}

/** One `<value>` element (and its newline). Throws XmlRpcEncodeError for values XML-RPC cannot carry. */
export function encodeValue(v: XmlRpcValue): string {
  const out: string[] = [];
  encodeInto(out, v, 0);
  return out.join('');
}

/** A methodResponse carrying one value, as UTF-8 bytes ready to send. */
export function encodeResponse(value: XmlRpcValue): Buffer {
  const out: string[] = [HEADER, '<methodResponse>\n<params>\n<param>\n'];
  encodeInto(out, value, 0);
  out.push('</param>\n</params>\n</methodResponse>\n');
  return Buffer.from(out.join(''), 'utf8');
}

/** A fault methodResponse. Characters XML cannot carry in the text become U+FFFD; never throws. */
export function encodeFault(fault: FaultValue): Buffer {
  const code = Number.isInteger(fault.faultCode) && fault.faultCode >= -2147483648 && fault.faultCode <= 2147483647 ? fault.faultCode : 1;
  return Buffer.from(
    `${HEADER}<methodResponse>\n<fault>\n<value><struct>\n` +
      `<member>\n<name>faultCode</name>\n<value><int>${code}</int></value>\n</member>\n` +
      `<member>\n<name>faultString</name>\n<value><string>${escapeXmlText(sanitizeXmlText(String(fault.faultString)))}</string></value>\n</member>\n` +
      `</struct></value>\n</fault>\n</methodResponse>\n`,
    'utf8',
  );
}

/** A methodCall document (for clients and tests). */
export function encodeMethodCall(methodName: string, params: readonly XmlRpcValue[]): string {
  const out: string[] = [HEADER, '<methodCall>\n<methodName>', escapeXmlText(methodName), '</methodName>\n<params>\n'];
  for (const p of params) {
    out.push('<param>\n');
    encodeInto(out, p, 0);
    out.push('</param>\n');
  }
  out.push('</params>\n</methodCall>\n');
  return out.join('');
}
