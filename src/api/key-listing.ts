// Which cached keys GetSSHKeys lists, and in what form (interop spec sections 1 and 7).
// PlanetLab only ever served ssh-rsa and ssh-dss keys, and the Stork client converts every entry
// of the slice's GetSSHKeys string to an RSA key, exiting when one conversion fails: by default
// only those two types are listed. Every other type stays cached and served to sshd
// (`authorized-keys`) and by `sliceid keys --all`.
import { KEY_TYPES, type KeyType } from '../keys/sshkey.js';

/** `[api] getsshkeys_key_types`: "planetlab" (ssh-rsa, ssh-dss), "all", or a list of key types. */
export type KeyTypeSetting = 'planetlab' | 'all' | readonly KeyType[];

export const DEFAULT_KEY_TYPE_SETTING: KeyTypeSetting = 'planetlab';

/** The types PLC accepted (PLCAPI's key rule) and so the only ones a PlanetLab node served. */
export const PLANETLAB_KEY_TYPES: readonly KeyType[] = ['ssh-rsa', 'ssh-dss'];

/** The types a setting lists; undefined means every type. */
export function listedTypes(setting: KeyTypeSetting): ReadonlySet<string> | undefined {
  if (setting === 'all') return undefined;
  return new Set(setting === 'planetlab' ? PLANETLAB_KEY_TYPES : setting);
}

/** The setting in words, for status: `planetlab (ssh-rsa, ssh-dss)`, `all`, `ssh-rsa, ssh-ed25519`. */
export function describeSetting(setting: KeyTypeSetting): string {
  if (setting === 'all') return 'all key types';
  if (setting === 'planetlab') return `planetlab (${PLANETLAB_KEY_TYPES.join(', ')})`;
  return setting.join(', ');
}

/** Whether `value` names a key type this project knows (the config validates lists with it). */
export function isKnownKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

/** A character outside printable ASCII (tabs included), a double space, or a blank at either end. */
const NOT_IN_FORM = /[^\x20-\x7e]| {2}|^ | $/;
const FIELDS = /^([^ \t]+)[ \t]+([^ \t]+)(?:[ \t]+(.*))?$/s;

/**
 * Characters of a key comment GetSSHKeys lists; the rest is cut. A comment is a label (sshd and
 * the Raven tools ignore it), but a user may make hers 1 MiB of `&` (5 MiB once escaped as XML):
 * cut, 63 such keys make a ~105 KB reply instead of ~5 MiB. sshd gets the comment unchanged.
 */
export const MAX_LISTED_COMMENT = 256;

/** Where the comment starts in a text already in form ("type blob comment"), or -1. */
function commentStart(text: string): number {
  const first = text.indexOf(' ');
  if (first < 0) return -1;
  const second = text.indexOf(' ', first + 1);
  return second < 0 ? -1 : second + 1;
}

/**
 * A cached key text as GetSSHKeys lists it: `type base64 comment`, fields separated by single
 * spaces, the comment's runs of blanks made one space and every character outside printable
 * ASCII made `?` (Python 2's xmlrpclib hands a non-ASCII reply to the Raven tools as a unicode
 * object, and their str() of it raises), and cut at MAX_LISTED_COMMENT characters. sshd gets the
 * text unchanged (`authorized-keys`).
 */
export function listingText(text: string): string {
  // What the cache holds (sshkey.ts: "type blob comment", trimmed) is nearly always in form already.
  if (!NOT_IN_FORM.test(text)) {
    const at = commentStart(text);
    if (at < 0 || text.length - at <= MAX_LISTED_COMMENT) return text;
  }
  const m = FIELDS.exec(text.trim());
  if (!m) return text;
  const comment = (m[3] ?? '').replace(/[^\x20-\x7e]/gu, '?').replace(/[ \t]+/g, ' ').trim().slice(0, MAX_LISTED_COMMENT).trimEnd();
  return comment ? `${m[1]} ${m[2]} ${comment}` : `${m[1]} ${m[2]}`;
}

export interface KeyListing {
  /** What GetSSHKeys lists, in cache order, as listingText gives them. */
  readonly listed: readonly string[];
  /** Keys left out, counted per type. */
  readonly leftOut: Readonly<Record<string, number>>;
  /** Every key the cache holds for the slice. */
  readonly total: number;
}

/** Split the slice's cached key texts into what GetSSHKeys lists and what it leaves out. */
export function listKeys(texts: readonly string[], setting: KeyTypeSetting): KeyListing {
  const types = listedTypes(setting);
  const listed: string[] = [];
  const leftOut: Record<string, number> = {};
  for (const text of texts) {
    const type = /^[^ \t]*/.exec(text.trim())![0];
    if (types && !types.has(type)) leftOut[type] = (leftOut[type] ?? 0) + 1;
    else listed.push(listingText(text));
  }
  return { listed, leftOut, total: texts.length };
}

/** Bits of an ssh-rsa blob's modulus (the blob was validated when cached); 0 when unreadable. */
function rsaBits(b64: string): number {
  const blob = Buffer.from(b64, 'base64');
  let at = 0;
  let field = Buffer.alloc(0);
  for (let i = 0; i < 3; i++) {
    if (at + 4 > blob.length) return 0;
    const len = blob.readUInt32BE(at);
    field = blob.subarray(at + 4, at + 4 + len);
    at += 4 + len;
  }
  let start = 0;
  while (start < field.length && field[start] === 0) start++;
  return start === field.length ? 0 : (field.length - start - 1) * 8 + (32 - Math.clz32(field[start]!));
}

/**
 * Listed keys the Stork client cannot use, counted by reason: it rejects ssh-dss after
 * converting it, and corrupts RSA keys over 4096 bits (spec section 1). Either ends the client.
 */
export function storkUnusable(listed: readonly string[]): Readonly<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const text of listed) {
    const [type, blob] = text.split(' ', 2) as [string, string | undefined];
    const reason = type === 'ssh-dss' ? 'ssh-dss' : type === 'ssh-rsa' && blob !== undefined && rsaBits(blob) > 4096 ? 'ssh-rsa over 4096 bits' : undefined;
    if (reason) out[reason] = (out[reason] ?? 0) + 1;
  }
  return out;
}

/** "2 ssh-ed25519, 1 ecdsa-sha2-nistp256" (types sorted), or "" when nothing is left out. */
export function describeLeftOut(leftOut: Readonly<Record<string, number>>): string {
  return Object.entries(leftOut)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([type, n]) => `${n} ${type}`)
    .join(', ');
}

/**
 * The status line about GetSSHKeys' key types, and the problem when the slice's entry is empty
 * only because every key it has is of a type left out (the Raven tools then report "no keys").
 */
export function listingReport(slicename: string | undefined, listing: KeyListing, setting: KeyTypeSetting): { line: string; problems: string[] } {
  const out = describeLeftOut(listing.leftOut);
  const line =
    `lists ${listing.listed.length} of ${listing.total} keys (types: ${describeSetting(setting)})` +
    (out ? `; leaves out ${out} (served to sshd and by "sliceid keys --all")` : '');
  const problems: string[] = [];
  if (slicename === undefined) return { line, problems };
  if (listing.listed.length === 0 && listing.total > 0) {
    problems.push(
      `GetSSHKeys lists no key for slice ${slicename}: all ${listing.total} of its keys are of types it leaves out (${out}), ` +
        'so the Raven tools would report "no keys"; a slice user needs an ssh-rsa key',
    );
  }
  const unusable = describeLeftOut(storkUnusable(listing.listed));
  if (unusable) {
    problems.push(
      `GetSSHKeys lists for slice ${slicename} keys the Raven tools cannot convert (${unusable}): they stop at the first one; ` +
        'remove them from the slice users, or set [api] getsshkeys_key_types = ["ssh-rsa"] for ssh-dss',
    );
  }
  return { line, problems };
}
