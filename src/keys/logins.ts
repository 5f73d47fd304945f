// Which logins get keys on this node: the node's accounts, never a name taken at face value.
// - tmcc accounts: only logins an ADDUSER line creates (a PUBKEY line of any other login is refused);
// - geni-get geni_user: only users whose URN's authority is the slice's testbed or the node's (the
//   top-level authority, e.g. `emulab.net`), as the login is only the URN's last part;
// - never uid 0 or a system account: a UID below 1000 in the accounts data, or a login that the
//   node's own /etc/passwd gives a uid below 1000 (and `root` always).
// A refused user is left out of its source (so neither sshd's key files nor GetSSHKeys carry its
// keys), with one sentence naming the login (and the URN, for geni_user) for `status`.
import fs from 'node:fs';
import type { NodePaths } from '../paths.js';
import type { SliceUser, SourceResult } from './types.js';
import { ACCOUNTS_SOURCE_ID } from './accounts.js';
import { GENI_USER_SOURCE_ID } from './geni-user.js';

/** System accounts have uids below this (login.defs' UID_MIN; Emulab's users start far above it). */
export const FIRST_USER_UID = 1000;
/** The node's account database, read for the logins of its system accounts (root-owned, trusted). */
const PASSWD = '/etc/passwd';
const MAX_PASSWD = 8 * 1024 * 1024;

export interface LoginPolicy {
  /** Top-level authorities whose geni_user entries are users of this node (lowercase), with what each is. */
  readonly authorities: ReadonlyMap<string, string>;
  /** Logins of the node's system accounts -> uid (from /etc/passwd), with root always. */
  readonly system: ReadonlyMap<string, number>;
  readonly passwd: string;
}

/** What the policy needs of the identity: the slice URN and the node's testbed domain. */
export interface PolicyIdentity {
  readonly domain: string;
  readonly slice: { readonly urn: string };
}

/** The top-level authority of a URN (`urn:publicid:IDN+<top>[:<sub>]*+<type>+<name>`), lowercase. */
export function topAuthority(urn: string): string | undefined {
  const m = /^urn:publicid:IDN\+([^+:]+)/i.exec(urn);
  return m ? m[1]!.toLowerCase() : undefined;
}

/** The node's system logins from `<root>/etc/passwd` (none when it cannot be read), and root. */
export function systemLogins(file: string): Map<string, number> {
  const out = new Map<string, number>([['root', 0]]);
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_PASSWD) return out;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':');
    if (!name || uid === undefined || !/^\d{1,10}$/.test(uid)) continue;
    if (Number(uid) < FIRST_USER_UID) out.set(name, Number(uid));
  }
  return out;
}

export function loginPolicy(paths: NodePaths, identity: PolicyIdentity | undefined): LoginPolicy {
  const authorities = new Map<string, string>();
  if (identity) {
    const slice = topAuthority(identity.slice.urn);
    if (slice) authorities.set(slice, "the slice's");
    if (!authorities.has(identity.domain.toLowerCase())) authorities.set(identity.domain.toLowerCase(), "the node's");
  }
  const passwd = paths.under(PASSWD);
  return { authorities, system: systemLogins(passwd), passwd };
}

/** Why `user` of `source` gets no keys on this node, or undefined when it may have them. */
export function refusal(user: SliceUser, source: SourceResult, policy: LoginPolicy): string | undefined {
  // A geni_user entry is named by its URN: the login is only the URN's last part.
  const geni = source.id === GENI_USER_SOURCE_ID;
  const who = geni ? `${user.urn ?? user.login} refused:` : `login ${user.login}`;
  if (geni) {
    const top = topAuthority(user.urn ?? '');
    if (!policy.authorities.size) return `${source.id}: ${who} no identity yet to check its authority against`;
    if (!top || !policy.authorities.has(top)) {
      const known = [...policy.authorities].map(([a, what]) => `${what} ${a}`);
      const not = known.length > 1 ? `neither ${known.join(' nor ')}` : `not ${known[0]}`;
      return `${source.id}: ${who} its authority ${top ?? '(none)'} is ${not}, so ${user.login} is not this node's user`;
    }
  }
  const system = policy.system.get(user.login);
  if (system !== undefined) {
    return `${source.id}: ${who} ${geni ? `login ${user.login} ` : ''}is a system account of this node (uid ${system}${user.login === 'root' ? '' : ` in ${policy.passwd}`}): no keys for it`;
  }
  if (user.uid !== undefined && user.uid < FIRST_USER_UID) {
    return `${source.id}: ${who} has UID ${user.uid}, a system account's (below ${FIRST_USER_UID}): no keys for it`;
  }
  if (source.id === ACCOUNTS_SOURCE_ID && user.uid === undefined) {
    return `${source.id}: ${who} has PUBKEY lines but no ADDUSER line creates it: no keys for it`;
  }
  return undefined;
}

/**
 * Root or a system account (by the node's passwd or a UID below 1000), whatever its source: the
 * sshd key writer's last check, also over what a cache made by an older version may still hold.
 */
export function isSystemAccount(user: { readonly login: string; readonly uid?: number | undefined }, policy: LoginPolicy): boolean {
  return policy.system.has(user.login) || (user.uid !== undefined && user.uid < FIRST_USER_UID);
}

/** `result` without the users the policy refuses, and one sentence per refused user. */
export function admitUsers(result: SourceResult, policy: LoginPolicy): { result: SourceResult; refused: string[] } {
  const refused: string[] = [];
  const users = result.users.filter((u) => {
    const why = refusal(u, result, policy);
    if (why) refused.push(why);
    return !why;
  });
  return { result: refused.length ? { ...result, users } : result, refused };
}
