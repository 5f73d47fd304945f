// Who signs the slice and node GIDs: a node-local authority per top-level authority
// (urn:publicid:IDN+<domain>+authority+sa, self-signed, CA:TRUE, key only in the state directory),
// or the operator's authority certificate and key from the config.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readIfExists } from '../fs/atomic.js';
import { buildGid, generateRsaKey, gidCommonName, parseGid, signedBy, splitPem, type GidInfo, DAY_MS } from './gid.js';
import { authorityUrn, hrnIsAuthorityOf, urnToHrn } from './names.js';
import { uuidV5 } from './uuid.js';
import { isoTime } from '../time.js';

export interface Authority {
  readonly kind: 'local' | 'operator';
  readonly urn: string;
  readonly hrn: string;
  /** The authority's own certificate. */
  readonly cert: string;
  /** What follows a leaf in a GID file: the authority certificate and any issuers above it. */
  readonly chain: string;
  /** Private key PEM (never leaves the state directory or the operator's file). */
  readonly key: string;
  readonly info: GidInfo;
}

/** A file to write once the whole refresh is known to succeed. */
export interface PendingWrite {
  readonly file: string;
  readonly data: string;
  readonly mode: number;
}

/** A key and certificate pair in the state directory, as far as they can be read. */
export interface Slot {
  readonly keyFile: string;
  readonly certFile: string;
  /** The private key PEM when present, readable and RSA. */
  readonly key: string | undefined;
  /** The certificate when present and decodable. */
  readonly cert: GidInfo | undefined;
  /** Whether cert and key belong together. */
  readonly matches: boolean;
}

export function readSlot(dir: string, name: string): Slot {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  let key: string | undefined;
  let cert: GidInfo | undefined;
  try {
    const text = readIfExists(keyFile)?.toString('utf8');
    if (text && crypto.createPrivateKey(text).asymmetricKeyType === 'rsa') key = text;
  } catch {
    key = undefined; // unreadable or corrupt: a new key is made
  }
  try {
    const text = readIfExists(certFile)?.toString('utf8');
    if (text) cert = parseGid(text);
  } catch {
    cert = undefined;
  }
  return { keyFile, certFile, key, cert, matches: !!key && !!cert && keyMatches(key, cert.pem) };
}

export function keyMatches(keyPem: string, certPem: string): boolean {
  try {
    const a = crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    const b = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    return a.equals(b);
  } catch {
    return false;
  }
}


/** The top-level authority (first URN authority part, lowercased) a leaf URN belongs to. */
export function topLevelOf(urn: string): string {
  return urn.split('+')[1]!.split(':')[0]!.toLowerCase();
}

/**
 * The node-local authority for `toplevel`: reuse the stored one unless its key is missing or
 * unreadable, its certificate is missing, foreign or within `renewBeforeDays` of expiry.
 * Nothing is written here; the writes are returned.
 */
export async function localAuthority(
  dir: string,
  toplevel: string,
  opts: { now: Date; validityDays: number; renewBeforeDays: number },
): Promise<{ authority: Authority; issued: boolean; writes: PendingWrite[] }> {
  const urn = authorityUrn([toplevel]);
  const hrn = urnToHrn(urn);
  const slot = readSlot(dir, `authority-${toplevel}`);
  const renewAt = (c: GidInfo) => c.notAfter.getTime() - opts.renewBeforeDays * DAY_MS;
  const c = slot.cert;
  const current =
    slot.key && c && slot.matches && c.urn === urn && c.cn === gidCommonName(hrn, uuidV5(urn)) && c.ca && signedBy(c, c) && opts.now.getTime() < renewAt(c) && c.notBefore <= opts.now;
  if (current) {
    return { authority: { kind: 'local', urn, hrn, cert: c.pem, chain: c.pem, key: slot.key!, info: c }, issued: false, writes: [] };
  }
  const key = slot.key ?? (await generateRsaKey());
  const pem = buildGid({ urn, uuid: uuidV5(urn), subjectKey: key, ca: true, now: opts.now, validityDays: opts.validityDays });
  const info = parseGid(pem);
  const writes: PendingWrite[] = [{ file: slot.certFile, data: pem, mode: 0o600 }];
  if (key !== slot.key) writes.unshift({ file: slot.keyFile, data: key, mode: 0o600 });
  return { authority: { kind: 'local', urn, hrn, cert: pem, chain: pem, key, info }, issued: true, writes };
}

/**
 * The operator's authority (config [authority] cert and key). Refused with an InputError naming
 * the file when unreadable, not an RSA key, not matching, not a CA:TRUE authority GID, or expired.
 */
export function operatorAuthority(files: { cert: string; key: string }, now: Date): Authority {
  const read = (file: string, what: string): string => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new InputError({ source: file }, file, `cannot be read as the operator's authority ${what}: ${(err as Error).message}`);
    }
  };
  const certText = read(files.cert, 'certificate');
  const keyText = read(files.key, 'key');
  const blocks = splitPem(certText);
  let info: GidInfo;
  try {
    if (blocks.length === 0) throw new Error('no PEM certificate in it');
    info = parseGid(blocks[0]!);
  } catch (err) {
    throw new InputError({ source: files.cert }, files.cert, `is not a PEM certificate: ${(err as Error).message}`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch (err) {
    throw new InputError({ source: files.key }, files.key, `is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new InputError({ source: files.key }, files.key, `holds a ${key.asymmetricKeyType} key; GIDs are signed sha256WithRSAEncryption, so the authority key must be RSA`);
  }
  if (!keyMatches(keyText, info.pem)) {
    throw new InputError({ source: files.key }, files.key, `does not match the public key of the certificate ${files.cert}`);
  }
  if (!info.urn || !info.hrn || info.type !== 'authority') {
    throw new InputError({ source: files.cert }, info.urn ?? info.cn ?? '', 'is not an authority GID: its subjectAltName must carry a URN urn:publicid:IDN+<authority>+authority+sa');
  }
  if (!info.ca) throw new InputError({ source: files.cert }, info.urn, 'is not a CA certificate (basicConstraints CA:TRUE)');
  if (now > info.notAfter) throw new InputError({ source: files.cert }, info.urn, `expired on ${isoTime(info.notAfter)}`);
  return { kind: 'operator', urn: info.urn, hrn: info.hrn, cert: blocks[0]!, chain: blocks.join(''), key: keyText, info };
}

/** Whether `authority` may sign a GID with this HRN (its HRN is a prefix authority of it). */
export function authorityCovers(authority: Authority, hrn: string): boolean {
  return hrnIsAuthorityOf(authority.hrn, hrn);
}
