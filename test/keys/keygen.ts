// Test helper: real public keys in OpenSSH text form, built from node:crypto key pairs (or random
// bytes for ed25519, which any 32 bytes are), plus the wire-format pieces to forge bad blobs.
import crypto from 'node:crypto';

export function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

export function mpint(mag: Buffer): Buffer {
  let m = mag;
  while (m.length > 1 && m[0] === 0) m = m.subarray(1);
  return sshString(m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

export function blobText(type: string, parts: Buffer[], comment = ''): string {
  const b64 = Buffer.concat([sshString(type), ...parts]).toString('base64');
  return comment ? `${type} ${b64} ${comment}` : `${type} ${b64}`;
}

export function ed25519FromBytes(pub: Buffer, comment = ''): string {
  return blobText('ssh-ed25519', [sshString(pub)], comment);
}

export function randomEd25519(comment = ''): string {
  return ed25519FromBytes(crypto.randomBytes(32), comment);
}

const b64u = (s: string): Buffer => Buffer.from(s, 'base64url');

export function rsaKey(bits: number, comment = ''): string {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = publicKey.export({ format: 'jwk' });
  return blobText('ssh-rsa', [mpint(b64u(jwk.e!)), mpint(b64u(jwk.n!))], comment);
}

export function ecdsaPoint(curve: 'P-256' | 'P-384' | 'P-521'): Buffer {
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve });
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), b64u(jwk.x!), b64u(jwk.y!)]);
}

export function ecdsaKey(curve: 'P-256' | 'P-384' | 'P-521', comment = ''): string {
  const name = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' }[curve];
  return blobText(`ecdsa-sha2-${name}`, [sshString(name), sshString(ecdsaPoint(curve))], comment);
}

export function ed25519Key(comment = ''): string {
  const { publicKey } = crypto.generateKeyPairSync('ed25519');
  return ed25519FromBytes(b64u(publicKey.export({ format: 'jwk' }).x!), comment);
}

export function skEd25519Key(comment = ''): string {
  return blobText('sk-ssh-ed25519@openssh.com', [sshString(crypto.randomBytes(32)), sshString('ssh:')], comment);
}

export function skEcdsaKey(comment = ''): string {
  return blobText('sk-ecdsa-sha2-nistp256@openssh.com', [sshString('nistp256'), sshString(ecdsaPoint('P-256')), sshString('ssh:')], comment);
}
