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
 * A cached key text as GetSSHKeys lists it: `type base64 comment`, fields separated by single
 * spaces, the comment's runs of blanks made one space and every character outside printable
 * ASCII made `?` (Python 2's xmlrpclib hands a non-ASCII reply to the Raven tools as a unicode
 * object, and their str() of it raises). sshd gets the text unchanged (`authorized-keys`).
 */
export function listingText(text: string): string {
  // What the cache holds (sshkey.ts: "type blob comment", trimmed) is nearly always in form already.
  if (!NOT_IN_FORM.test(text)) return text;
  const m = FIELDS.exec(text.trim());
  if (!m) return text;
  const comment = (m[3] ?? '').replace(/[^\x20-\x7e]/gu, '?').replace(/[ \t]+/g, ' ').trim();
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
export function listingReport(slicename: string | undefined, listing: KeyListing, setting: KeyTypeSetting): { line: string; problem: string | undefined } {
  const out = describeLeftOut(listing.leftOut);
  const line =
    `lists ${listing.listed.length} of ${listing.total} keys (types: ${describeSetting(setting)})` +
    (out ? `; leaves out ${out} (served to sshd and by "sliceid keys --all")` : '');
  const problem =
    slicename !== undefined && listing.listed.length === 0 && listing.total > 0
      ? `GetSSHKeys lists no key for slice ${slicename}: all ${listing.total} of its keys are of types it leaves out (${out}), ` +
        'so the Raven tools would report "no keys"; add an ssh-rsa key, or set [api] getsshkeys_key_types'
      : undefined;
  return { line, problem };
}
