// GIDs (SFA sfa/trust/gid.py, GENI certificate spec, spec section 3): build, parse and verify.
// node-forge assembles the certificate; node:crypto makes keys and signatures.
//
// node-forge (about 40 modules, ~12 MB resident) is loaded only when a GID is built or a
// certificate falls outside what the small DER reader below takes: a daemon whose GIDs are
// current (a warm start, every refresh that re-issues nothing) never loads it.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type forge from 'node-forge';
import { parseUrn, urnToHrn, hrnIsAuthorityOf } from './names.js';
import { isoTime } from '../time.js';

type Forge = typeof forge;
let forgeMemo: Forge | undefined;
/** node-forge, loaded on first use (it is CommonJS, so synchronously). */
function loadForge(): Forge {
  return (forgeMemo ??= createRequire(import.meta.url)('node-forge') as Forge);
}

// ASN.1 tag classes and universal types (as forge numbers them).
const CLASS_UNIVERSAL = 0x00;
const CLASS_CONTEXT_SPECIFIC = 0x80;
const TYPE_BOOLEAN = 1;
const TYPE_BITSTRING = 3;
const TYPE_UTF8 = 12;
const TYPE_UTCTIME = 23;
const TYPE_BMPSTRING = 30;
const OID_CN = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const HOUR_MS = 3600_000;
/** One day in milliseconds (validity and renewal arithmetic). */
export const DAY_MS = 86_400_000;

/** A fresh RSA 2048 private key (PKCS#1 PEM), made by node:crypto off the main thread. */
export function generateRsaKey(): Promise<string> {
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair(
      'rsa',
      { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } },
      (err, _pub, priv) => (err ? reject(err) : resolve(priv)),
    );
  });
}

/** A random positive serial number (16 bytes, hex, no leading zero byte). */
export function newSerial(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export interface GidRequest {
  readonly urn: string;
  /** Lowercase dashed UUID. */
  readonly uuid: string;
  readonly email?: string;
  /** The subject's private key (PEM); the certificate carries its public half. */
  readonly subjectKey: string;
  /** The issuer's certificate (PEM) and private key; omitted for a self-signed authority. */
  readonly issuer?: { readonly cert: string; readonly key: string };
  /** CA:TRUE for an authority, CA:FALSE for node and slice GIDs. */
  readonly ca: boolean;
  readonly now: Date;
  readonly validityDays: number;
  readonly serial?: string;
}

/** X.509's upper bound for a common name (ub-common-name, RFC 5280). */
export const CN_MAX = 64;

/**
 * The subject CN of a GID (spec section 3): its HRN, or, when the HRN is longer than a CN may be,
 * the GID's UUID. Nothing reads the CN back as a name: readers take the URN from subjectAltName.
 */
export function gidCommonName(hrn: string, uuid: string): string {
  return hrn.length <= CN_MAX ? hrn : uuid.toLowerCase();
}

/** Build and sign one GID; returns its PEM (LF line ends). */
export function buildGid(req: GidRequest): string {
  const forge = loadForge();
  const { asn1, pki } = forge;
  const subjectHrn = urnToHrn(req.urn);
  const subject = [{ type: OID_CN, value: gidCommonName(subjectHrn, req.uuid), valueTagClass: asn1.Type.UTF8 } as unknown as forge.pki.CertificateField];
  const issuerKey = crypto.createPrivateKey(req.issuer?.key ?? req.subjectKey);
  if (issuerKey.asymmetricKeyType !== 'rsa') {
    throw new Error(`the issuer key is ${issuerKey.asymmetricKeyType}, not RSA (GIDs are sha256WithRSAEncryption)`);
  }
  // The issuer name is the issuer certificate's subject, attribute for attribute and in the same
  // string types, so that chain building matches it exactly.
  const issuerName = req.issuer ? issuerSubject(req.issuer.cert) : subject;
  const publicPem = crypto.createPublicKey(req.subjectKey).export({ type: 'spki', format: 'pem' }).toString();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(publicPem);
  cert.serialNumber = req.serial ?? newSerial();
  const now = Math.floor(req.now.getTime() / 1000) * 1000;
  cert.validity.notBefore = new Date(now - HOUR_MS);
  cert.validity.notAfter = new Date(now + req.validityDays * DAY_MS);
  // UTF8String: an HRN's backslashes and underscores are not PrintableString characters.
  cert.setSubject(subject);
  cert.setIssuer(issuerName);
  const altNames: Array<{ type: number; value: string }> = [
    { type: 6, value: req.urn },
    { type: 6, value: `urn:uuid:${req.uuid.toLowerCase()}` },
  ];
  if (req.email) altNames.push({ type: 1, value: req.email });
  cert.setExtensions([
    { name: 'basicConstraints', cA: req.ca, critical: true },
    { name: 'subjectAltName', altNames },
  ]);
  // forge's cert.sign() with the signature made by node:crypto.
  cert.md = forge.md.sha256.create();
  cert.signatureOid = cert.siginfo.algorithmOid = pki.oids['sha256WithRSAEncryption']!;
  // (getTBSCertificate is in node-forge but missing from its typings)
  const tbs = (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  (cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = crypto.sign('sha256', tbsDer, issuerKey).toString('binary');
  return pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

/** The subject attributes of a certificate, decoded by forge from its ASN.1 (any key type). */
function issuerSubject(certPem: string): forge.pki.CertificateField[] {
  const forge = loadForge();
  const { asn1 } = forge;
  const block = splitPem(certPem)[0];
  if (!block) throw new Error('the issuer certificate holds no PEM certificate');
  const root = asn1.fromDer(forge.util.createBuffer(forge.pem.decode(block)[0]!.body));
  const f = kids(kids(root)[0]);
  const i = f[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC && f[0].type === 0 ? 1 : 0;
  const fields: forge.pki.CertificateField[] = [];
  for (const rdn of kids(f[i + 4])) {
    for (const atv of kids(rdn)) {
      const [oid, value] = kids(atv);
      if (!oid || !value) continue;
      let text = bytesOf(value);
      if (value.type === asn1.Type.UTF8) text = forge.util.decodeUtf8(text);
      fields.push({ type: asn1.derToOid(bytesOf(oid)), value: text, valueTagClass: value.type } as unknown as forge.pki.CertificateField);
    }
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Parsing

export interface GidInfo {
  /** URN from subjectAltName (first URI that is not urn:uuid:). */
  readonly urn: string | undefined;
  /** HRN derived from the URN (never from the CN), as SFA readers do. */
  readonly hrn: string | undefined;
  /** URN type: authority, slice, node, ... */
  readonly type: string | undefined;
  readonly cn: string | undefined;
  /** Number of attributes in the subject (a GID has exactly one, CN). */
  readonly subjectAttributes: number;
  readonly issuerCn: string | undefined;
  readonly uuid: string | undefined;
  readonly email: string | undefined;
  /** Serial, lowercase hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca: boolean;
  /** Extension names in certificate order, e.g. ["basicConstraints!", "subjectAltName"] (! = critical). */
  readonly extensions: readonly string[];
  readonly pem: string;
}

/** The PEM certificate blocks of a file, in order. */
export function splitPem(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0].replace(/\r\n/g, '\n')}\n`);
}

/** An ASN.1 node as node-forge gives it: primitive values as binary strings, constructed as lists. */
interface Node {
  readonly tagClass: number;
  readonly type: number;
  readonly value: string | Node[];
}

/** What parsing needs from an ASN.1 library; DER and values are binary strings, as in forge. */
interface Decoder {
  /** The DER of one PEM certificate block. */
  pemBody(block: string): string;
  fromDer(der: string): Node;
  derToOid(der: string): string;
  utcTimeToDate(text: string): Date;
  generalizedTimeToDate(text: string): Date;
}

const kids = (n: Node | undefined): Node[] => (n && Array.isArray(n.value) ? n.value : []);
const bytesOf = (n: Node | undefined): string => (n && typeof n.value === 'string' ? n.value : '');

/** Input the small reader leaves to node-forge (which then parses it, or refuses it, as always). */
class NotPlainDer extends Error {}

/**
 * A DER reader for certificates as they are normally encoded: definite lengths, one-byte tags,
 * even-length BMPStrings, well-formed OIDs, UTCTime/GeneralizedTime in Z form. It gives exactly
 * the nodes node-forge's fromDer gives for such input (including forge's habit of decoding a BIT
 * STRING that holds ASN.1, and of reading a BMPString as UTF-16 code units); anything else throws
 * NotPlainDer and the caller asks forge.
 */
const plainDer: Decoder = {
  pemBody(block) {
    const m = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/\r\n]*={0,2})\r?\n-----END CERTIFICATE-----\r?\n?$/.exec(block);
    const b64 = m?.[1]!.replace(/\r?\n/g, '');
    if (b64 === undefined || b64.length % 4 !== 0 || b64.length === 0) throw new NotPlainDer('PEM');
    return Buffer.from(b64, 'base64').toString('latin1');
  },
  fromDer(der) {
    const [node, next] = readDer(der, 0, der.length, 0, true);
    if (next !== der.length) throw new NotPlainDer('bytes after the DER value');
    return node;
  },
  derToOid(der) {
    if (der.length === 0 || der.charCodeAt(der.length - 1) & 0x80) throw new NotPlainDer('OID');
    let oid = '';
    let value = 0;
    for (let i = 0; i < der.length; i++) {
      if (value > 0x3fffffffffff) throw new NotPlainDer('OID arc too large');
      const b = der.charCodeAt(i);
      value = value * 128 + (b & 0x7f);
      if (b & 0x80) continue;
      oid += oid === '' ? (value < 80 ? `${Math.floor(value / 40)}.${value % 40}` : `2.${value - 80}`) : `.${value}`;
      value = 0;
    }
    return oid;
  },
  utcTimeToDate(text) {
    if (!/^\d{12}Z$/.test(text)) throw new NotPlainDer('UTCTime');
    const yy = Number(text.slice(0, 2));
    return utcDate(yy >= 50 ? 1900 + yy : 2000 + yy, text.slice(2));
  },
  generalizedTimeToDate(text) {
    if (!/^\d{14}Z$/.test(text)) throw new NotPlainDer('GeneralizedTime');
    return utcDate(Number(text.slice(0, 4)), text.slice(4));
  },
};

/** MMDDhhmmss of `year`, UTC, set field by field as forge does (no two-digit-year mapping). */
function utcDate(year: number, rest: string): Date {
  const n = (at: number): number => Number(rest.slice(at, at + 2));
  const date = new Date(0);
  date.setUTCFullYear(year, n(0) - 1, n(2));
  date.setUTCHours(n(4), n(6), n(8), 0);
  return date;
}

/** One TLV at `pos` (bounded by `end`): the node and where the next one starts. */
function readDer(s: string, pos: number, end: number, depth: number, decodeBitStrings: boolean): [Node, number] {
  if (depth >= 64 || end - pos < 2) throw new NotPlainDer('DER');
  const b1 = s.charCodeAt(pos++);
  const tagClass = b1 & 0xc0;
  const type = b1 & 0x1f;
  if (type === 0x1f) throw new NotPlainDer('multi-byte tag');
  let length = s.charCodeAt(pos++);
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 3 || end - pos < n) throw new NotPlainDer('DER length');
    length = 0;
    for (let k = 0; k < n; k++) length = length * 256 + s.charCodeAt(pos++);
  }
  if (length > end - pos) throw new NotPlainDer('DER length');
  const stop = pos + length;
  if (b1 & 0x20) {
    const value: Node[] = [];
    while (pos < stop) {
      const [child, next] = readDer(s, pos, stop, depth + 1, decodeBitStrings);
      value.push(child);
      pos = next;
    }
    return [{ tagClass, type, value }, stop];
  }
  // forge reads a BIT STRING with no unused bits that holds exactly one ASN.1 value as that value.
  if (decodeBitStrings && tagClass === CLASS_UNIVERSAL && type === TYPE_BITSTRING && length > 1 && s.charCodeAt(pos) === 0) {
    try {
      const [inner, next] = readDer(s, pos + 1, stop, depth + 1, false);
      if (next === stop && (inner.tagClass === CLASS_UNIVERSAL || inner.tagClass === CLASS_CONTEXT_SPECIFIC)) {
        return [{ tagClass, type, value: [inner] }, stop];
      }
    } catch {
      // plain bits
    }
  }
  if (type === TYPE_BMPSTRING) {
    if (length % 2 !== 0) throw new NotPlainDer('BMPString');
    let value = '';
    for (; pos < stop; pos += 2) value += String.fromCharCode((s.charCodeAt(pos) << 8) | s.charCodeAt(pos + 1));
    return [{ tagClass, type, value }, stop];
  }
  return [{ tagClass, type, value: s.slice(pos, stop) }, stop];
}

let forgeDecoderMemo: Decoder | undefined;
/** node-forge's own reader: the reference, and the way for certificates plainDer leaves. */
function forgeDecoder(): Decoder {
  if (forgeDecoderMemo) return forgeDecoderMemo;
  const forge = loadForge();
  const { asn1 } = forge;
  return (forgeDecoderMemo = {
    pemBody: (block) => forge.pem.decode(block)[0]!.body,
    fromDer: (der) => asn1.fromDer(forge.util.createBuffer(der)) as unknown as Node,
    derToOid: (der) => asn1.derToOid(der),
    utcTimeToDate: (text) => asn1.utcTimeToDate(text),
    generalizedTimeToDate: (text) => asn1.generalizedTimeToDate(text),
  });
}

function decodeString(n: Node): string {
  const raw = Buffer.from(bytesOf(n), 'binary');
  if (n.type === TYPE_UTF8) return raw.toString('utf8');
  if (n.type === TYPE_BMPSTRING) return raw.swap16().toString('utf16le');
  return raw.toString('latin1');
}

function nameInfo(asn1: Decoder, name: Node | undefined): { cn: string | undefined; count: number } {
  let cn: string | undefined;
  let count = 0;
  for (const rdn of kids(name)) {
    for (const atv of kids(rdn)) {
      const [oid, value] = kids(atv);
      count++;
      if (oid && value && asn1.derToOid(bytesOf(oid)) === OID_CN && cn === undefined) cn = decodeString(value);
    }
  }
  return { cn, count };
}

function timeOf(asn1: Decoder, n: Node | undefined): Date {
  if (!n) return new Date(NaN);
  return n.type === TYPE_UTCTIME ? asn1.utcTimeToDate(bytesOf(n)) : asn1.generalizedTimeToDate(bytesOf(n));
}

/** Decode one certificate (any key type). Throws on text that is not a DER certificate. */
export function parseGid(pem: string): GidInfo {
  const block = splitPem(pem)[0];
  if (!block) throw new Error('no PEM certificate found');
  try {
    return parseBlock(block, plainDer);
  } catch (err) {
    if (!(err instanceof NotPlainDer)) throw err;
    return parseBlock(block, forgeDecoder());
  }
}

/** parseGid through node-forge's reader only (tests compare the two). */
export function parseGidWithForge(pem: string): GidInfo {
  const block = splitPem(pem)[0];
  if (!block) throw new Error('no PEM certificate found');
  return parseBlock(block, forgeDecoder());
}

function parseBlock(block: string, asn1: Decoder): GidInfo {
  const der = asn1.pemBody(block);
  const root = asn1.fromDer(der);
  const tbs = kids(root)[0];
  const f = kids(tbs);
  let i = 0;
  if (f[0]?.tagClass === CLASS_CONTEXT_SPECIFIC && f[0].type === 0) i++;
  const serial = Buffer.from(bytesOf(f[i++]), 'binary').toString('hex').replace(/^(00)+(?=..)/, '');
  i++; // signature algorithm
  const issuer = nameInfo(asn1, f[i++]);
  const [nb, na] = kids(f[i++]);
  const subject = nameInfo(asn1, f[i++]);
  i++; // subjectPublicKeyInfo
  let ca = false;
  let urn: string | undefined;
  let uuid: string | undefined;
  let email: string | undefined;
  const extensions: string[] = [];
  for (const n of f.slice(i)) {
    if (n.tagClass !== CLASS_CONTEXT_SPECIFIC || n.type !== 3) continue;
    for (const ext of kids(kids(n)[0])) {
      const parts = kids(ext);
      const oid = asn1.derToOid(bytesOf(parts[0]));
      const critical = parts.length === 3 && bytesOf(parts[1]) !== '\x00';
      const value = asn1.fromDer(bytesOf(parts[parts.length - 1]));
      const name = oid === OID_BASIC_CONSTRAINTS ? 'basicConstraints' : oid === OID_SUBJECT_ALT_NAME ? 'subjectAltName' : oid;
      extensions.push(critical ? `${name}!` : name);
      if (oid === OID_BASIC_CONSTRAINTS) {
        const first = kids(value)[0];
        ca = !!first && first.type === TYPE_BOOLEAN && bytesOf(first) !== '\x00';
      } else if (oid === OID_SUBJECT_ALT_NAME) {
        for (const gn of kids(value)) {
          const text = Buffer.from(bytesOf(gn), 'binary').toString('latin1');
          if (gn.type === 6) {
            if (/^urn:uuid:/i.test(text)) uuid ??= text.slice('urn:uuid:'.length).toLowerCase();
            else urn ??= text;
          } else if (gn.type === 1) email ??= text;
        }
      }
    }
  }
  let hrn: string | undefined;
  let type: string | undefined;
  if (urn) {
    const parsed = parseUrn(urn);
    if (parsed) {
      hrn = urnToHrn(urn);
      type = parsed.type;
    }
  }
  return {
    urn,
    hrn,
    type,
    cn: subject.cn,
    subjectAttributes: subject.count,
    issuerCn: issuer.cn,
    uuid,
    email,
    serial,
    notBefore: timeOf(asn1, nb),
    notAfter: timeOf(asn1, na),
    ca,
    extensions,
    pem: block,
  };
}

/** Decode every certificate of a GID file (child first). */
export function parseGidChain(text: string): GidInfo[] {
  return splitPem(text).map(parseGid);
}

// ---------------------------------------------------------------------------------------------
// Verification

export interface ChainCheck {
  /** The chain verifies: no problems (warnings do not count). */
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** Departures from the GID format that do not break verification (CN, UUID). */
  readonly warnings: readonly string[];
  /** The last certificate is self-signed (the chain carries its own root). */
  readonly selfRooted: boolean;
}

/** Did `parent` sign `child`? (issuer name matches and the signature verifies) */
export function signedBy(child: GidInfo, parent: GidInfo): boolean {
  if (child.issuerCn !== parent.cn) return false;
  try {
    return new crypto.X509Certificate(child.pem).verify(new crypto.X509Certificate(parent.pem).publicKey);
  } catch {
    return false;
  }
}

/**
 * Check a GID chain (spec section 3): each parent signed its child, each parent is CA:TRUE and of
 * type authority, each parent's HRN is a prefix authority of its child's, every URN is in the
 * grammar and every certificate is valid at `now`. The GID shape (one CN equal to the HRN, or to the
 * UUID for an HRN over 64 characters, a UUID in subjectAltName) is reported as warnings.
 */
export function verifyGidChain(chain: readonly GidInfo[], now: Date = new Date()): ChainCheck {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (chain.length === 0) return { ok: false, problems: ['no certificate found'], warnings, selfRooted: false };
  chain.forEach((gid, i) => {
    const label = `certificate ${i + 1} (${gid.hrn ?? gid.cn ?? 'unnamed'})`;
    if (!gid.urn) problems.push(`${label}: no URN in subjectAltName`);
    else if (!gid.hrn) problems.push(`${label}: URN ${JSON.stringify(gid.urn)} is outside the GENI URN grammar`);
    if (gid.hrn && gid.cn !== gidCommonName(gid.hrn, gid.uuid ?? '')) {
      const want = gid.hrn.length <= CN_MAX ? 'the HRN' : `the UUID (the HRN is over ${CN_MAX} characters)`;
      warnings.push(`${label}: subject CN ${JSON.stringify(gid.cn)} is not ${want}`);
    }
    if (gid.subjectAttributes !== 1) warnings.push(`${label}: subject has ${gid.subjectAttributes} attributes, not exactly CN`);
    if (!gid.uuid) warnings.push(`${label}: no urn:uuid: in subjectAltName`);
    if (now < gid.notBefore) problems.push(`${label}: not valid before ${isoTime(gid.notBefore)}`);
    if (now > gid.notAfter) problems.push(`${label}: expired ${isoTime(gid.notAfter)}`);
    const parent = chain[i + 1];
    if (!parent) return;
    const plabel = `certificate ${i + 2} (${parent.hrn ?? parent.cn ?? 'unnamed'})`;
    if (!signedBy(gid, parent)) problems.push(`${label} was not signed by ${plabel}`);
    if (!parent.ca) problems.push(`${plabel} is not CA:TRUE`);
    if (parent.type !== 'authority') problems.push(`${plabel} is of type ${parent.type ?? 'unknown'}, not authority`);
    if (parent.hrn && gid.hrn && !hrnIsAuthorityOf(parent.hrn, gid.hrn)) {
      problems.push(`${plabel}: HRN ${parent.hrn} is not an authority of ${gid.hrn}`);
    }
  });
  const top = chain[chain.length - 1]!;
  const selfRooted = signedBy(top, top);
  if (selfRooted && chain.length > 1 && !top.ca) problems.push(`the self-signed root ${top.hrn ?? top.cn} is not CA:TRUE`);
  return { ok: problems.length === 0, problems, warnings, selfRooted };
}
