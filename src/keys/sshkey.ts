// One OpenSSH public key line, "type base64 [comment]", parsed and checked strictly: the type is
// one we know, the base64 is valid and canonical, the blob decodes in the SSH wire format with the
// same type name inside, the right fields of sane sizes and no trailing bytes. A line gives one
// key or an InputError, never more: nothing in a line is ever split or unescaped.
import crypto from 'node:crypto';
import { InputError, type Where } from '../errors.js';
import type { SshKey } from './types.js';

export const KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'ssh-dss',
] as const;
export type KeyType = (typeof KEY_TYPES)[number];

const KNOWN = new Set<string>(KEY_TYPES);

/** Longest key text accepted (a 16384-bit RSA key is about 2,800 characters of base64). */
export const MAX_KEY_TEXT = 16 * 1024;
const MAX_BLOB_B64 = 4 * 1024;

export function isKeyType(word: string): word is KeyType {
  return KNOWN.has(word);
}

// Control characters (C0 except tab, DEL, C1), Unicode line/paragraph separators, non-characters.
const FORBIDDEN = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\ufffe\uffff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const SPLIT = /^([^ \t]+)[ \t]+([^ \t]+)(?:[ \t]+(.*))?$/s;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Parse one public key text. Throws InputError naming `where` and the rule broken. */
export function parseKeyText(text: string, where: Where): SshKey {
  const fail = (rule: string, hint?: string): never => {
    throw new InputError(where, shorten(text), rule, hint);
  };
  if (text.length > MAX_KEY_TEXT) fail(`is longer than ${MAX_KEY_TEXT} characters`);
  if (FORBIDDEN.test(text)) fail('contains a control character or line break');
  if (LONE_SURROGATE.test(text)) fail('is not well-formed Unicode');
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, '');
  const m = SPLIT.exec(trimmed);
  if (!m) {
    if (trimmed === '') fail('is empty');
    fail(isKeyType(trimmed) ? 'has a key type but no key data' : 'is not "type base64 [comment]"');
  }
  const type = m![1]!;
  const b64 = m![2]!;
  const comment = m![3] ?? '';
  if (!isKeyType(type)) fail(`has an unknown key type ${JSON.stringify(shorten(type))}`, `known types: ${KEY_TYPES.join(', ')}`);
  if (comment.includes('\t')) fail('has a tab inside its comment');
  if (b64.length > MAX_BLOB_B64) fail(`has a key blob longer than ${MAX_BLOB_B64} characters`);
  if (b64.length % 4 !== 0 || !B64.test(b64)) fail('has a key blob that is not valid base64');
  const blob = Buffer.from(b64, 'base64');
  if (blob.toString('base64') !== b64) fail('has a key blob that is not canonical base64');
  const problem = checkBlob(type as KeyType, blob);
  if (problem) fail(`has a bad ${type} key blob: ${problem}`);
  const fingerprint = 'SHA256:' + crypto.hash('sha256', blob, 'base64').replace(/=+$/, '');
  return { type, blob: b64, comment, text: comment ? `${type} ${b64} ${comment}` : `${type} ${b64}`, fingerprint };
}

/** Like parseKeyText, but returns the error message instead of throwing. */
export function tryParseKeyText(text: string, where: Where): SshKey | InputError {
  try {
    return parseKeyText(text, where);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
}

// ---- SSH wire format (RFC 4251 section 5, RFC 4253 6.6, RFC 5656 3.1, RFC 8709, PROTOCOL.u2f) ----

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.off === this.buf.length;
  }
  bytes(what: string, max: number): Buffer {
    if (this.buf.length - this.off < 4) throw new Error(`${what} is cut short`);
    const len = this.buf.readUInt32BE(this.off);
    this.off += 4;
    if (len > max) throw new Error(`${what} is too long (${len} bytes)`);
    if (len > this.buf.length - this.off) throw new Error(`${what} is cut short`);
    const out = this.buf.subarray(this.off, this.off + len);
    this.off += len;
    return out;
  }
  /** A positive mpint in minimal form; returns its magnitude without the sign byte. */
  mpint(what: string, maxBytes: number): Buffer {
    const b = this.bytes(what, maxBytes + 1);
    if (b.length === 0) throw new Error(`${what} is zero`);
    if (b[0]! & 0x80) throw new Error(`${what} is negative`);
    if (b[0] === 0) {
      if (b.length === 1 || !(b[1]! & 0x80)) throw new Error(`${what} has a superfluous leading zero`);
      return b.subarray(1);
    }
    if (b.length > maxBytes) throw new Error(`${what} is too long`);
    return b;
  }
}

function bitLength(mag: Buffer): number {
  return mag.length === 0 ? 0 : (mag.length - 1) * 8 + (32 - Math.clz32(mag[0]!));
}

function big(mag: Buffer): bigint {
  return mag.length === 0 ? 0n : BigInt('0x' + mag.toString('hex'));
}

interface Curve {
  readonly name: string;
  readonly bytes: number;
  readonly p: bigint;
  readonly b: bigint;
}

const CURVES: Record<string, Curve> = {
  nistp256: {
    name: 'nistp256',
    bytes: 32,
    p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  nistp384: {
    name: 'nistp384',
    bytes: 48,
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  nistp521: {
    name: 'nistp521',
    bytes: 66,
    p: 2n ** 521n - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
};

/** An uncompressed point on the curve (not infinity, coordinates in range, y^2 = x^3 - 3x + b). */
function checkPoint(q: Buffer, curve: Curve): void {
  if (q.length !== 1 + 2 * curve.bytes || q[0] !== 0x04) throw new Error(`public point is not an uncompressed ${curve.name} point`);
  const x = big(q.subarray(1, 1 + curve.bytes));
  const y = big(q.subarray(1 + curve.bytes));
  const { p, b } = curve;
  if (x >= p || y >= p) throw new Error('public point coordinate out of range');
  const rhs = (((x * x) % p) * x - 3n * x + b) % p;
  if ((y * y - rhs) % p !== 0n) throw new Error(`public point is not on ${curve.name}`);
}

function checkApplication(r: Reader): void {
  const app = r.bytes('application', 1024);
  if (app.length === 0 || !/^[\x21-\x7e]+$/.test(app.toString('latin1'))) throw new Error('application is not printable ASCII');
}

function checkRsa(r: Reader): void {
  const e = r.mpint('exponent e', 512);
  const n = r.mpint('modulus n', 2048);
  const bits = bitLength(n);
  if (bits < 1024) throw new Error(`modulus has ${bits} bits (at least 1024 required)`);
  if (bits > 16384) throw new Error(`modulus has ${bits} bits (at most 16384 allowed)`);
  if (!(e[e.length - 1]! & 1) || (e.length === 1 && e[0]! < 3)) throw new Error('exponent e is not an odd number >= 3');
  if (!(n[n.length - 1]! & 1)) throw new Error('modulus n is even');
  if (e.length > n.length) throw new Error('exponent e is larger than the modulus');
}

function checkDss(r: Reader): void {
  const p = r.mpint('p', 128);
  const q = r.mpint('q', 20);
  const g = r.mpint('g', 128);
  const y = r.mpint('y', 128);
  if (bitLength(p) !== 1024) throw new Error(`p has ${bitLength(p)} bits (1024 required)`);
  if (bitLength(q) !== 160) throw new Error(`q has ${bitLength(q)} bits (160 required)`);
  const P = big(p);
  for (const [name, v] of [['g', big(g)], ['y', big(y)]] as const) {
    if (v <= 1n || v >= P) throw new Error(`${name} is out of range`);
  }
}

/** Check a decoded blob against its declared type; a sentence saying what is wrong, or undefined. */
export function checkBlob(type: KeyType, blob: Buffer): string | undefined {
  const r = new Reader(blob);
  try {
    const inner = r.bytes('type name', 64).toString('latin1');
    if (inner !== type) return `blob says it is ${JSON.stringify(shorten(inner))}`;
    switch (type) {
      case 'ssh-ed25519':
      case 'sk-ssh-ed25519@openssh.com': {
        if (r.bytes('public key', 32).length !== 32) throw new Error('public key is not 32 bytes');
        if (type !== 'ssh-ed25519') checkApplication(r);
        break;
      }
      case 'ecdsa-sha2-nistp256':
      case 'ecdsa-sha2-nistp384':
      case 'ecdsa-sha2-nistp521':
      case 'sk-ecdsa-sha2-nistp256@openssh.com': {
        const want = type.startsWith('sk-') ? 'nistp256' : type.slice('ecdsa-sha2-'.length);
        const curveName = r.bytes('curve name', 16).toString('latin1');
        if (curveName !== want) throw new Error(`curve ${JSON.stringify(curveName)} does not match the type (${want})`);
        checkPoint(r.bytes('public point', 1 + 2 * CURVES[want]!.bytes), CURVES[want]!);
        if (type.startsWith('sk-')) checkApplication(r);
        break;
      }
      case 'ssh-rsa':
        checkRsa(r);
        break;
      case 'ssh-dss':
        checkDss(r);
        break;
    }
    if (!r.done) return 'trailing bytes after the key';
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** OpenSSH-style SHA256 fingerprint of a base64 blob. */
export function fingerprintOf(blobBase64: string): string {
  return 'SHA256:' + crypto.createHash('sha256').update(Buffer.from(blobBase64, 'base64')).digest('base64').replace(/=+$/, '');
}
