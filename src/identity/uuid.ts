// UUIDs for GIDs. The slice UUID is name-based (RFC 4122 version 5, SHA-1) so that every node of a
// slice agrees on it without talking to each other.
import crypto from 'node:crypto';

/** RFC 4122 appendix C: the URL namespace. sliceid names a slice by its URN in this namespace. */
export const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

/** Version 5 UUID of `name` (UTF-8) in `namespace`, lowercase dashed. */
export function uuidV5(name: string, namespace: string = URL_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`namespace ${namespace} is not a UUID`);
  const hash = crypto.createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The slice UUID: v5 of the slice URN (exactly as derived) in the URL namespace. */
export function sliceUuid(sliceUrn: string): string {
  return uuidV5(sliceUrn, URL_NAMESPACE);
}
