// `geni-get geni_user`: ProtoGENI's list of the slice's users and their keys, as JSON:
//   [{"urn": "urn:publicid:IDN+emulab.net+user+alice", "keys": ["ssh-rsa AAAA... alice@laptop"]}]
// The login is the URN's name. Bad entries and bad keys are reported and skipped.
import type { Where } from '../errors.js';
import { formatWhere } from '../errors.js';
import type { NodePaths } from '../paths.js';
import type { Logger } from '../log.js';
import { findGeniGet, runGeniGet } from '../sources/geniget.js';
import type { Problem, SliceUser, SourceResult, SshKey } from './types.js';
import { tryParseKeyText } from './sshkey.js';
import { LOGIN } from './accounts.js';

export const GENI_USER_SOURCE_ID = 'geni-get:geni_user';
/** geni-get comes after every file source. */
export const GENI_USER_PRIORITY = 1_000_000_000;

export const MAX_GENI_USER_JSON = 4 * 1024 * 1024;
export const MAX_GENI_USERS = 100_000;
export const MAX_KEYS_PER_USER = 1000;

// ProtoGENI GeniHRN::IsValid (spec section 4), restricted to type "user".
const USER_URN = /^urn:publicid:IDN\+([A-Za-z0-9.-]+(?::[A-Za-z0-9._-]+)*)\+user\+((?:[-!$()*,./0-9:=@A-Z_a-z]|%[0-9A-Fa-f]{2})+)$/;

/** Parse geni_user output. `where` names the command (and executable) for problems. */
export function parseGeniUser(output: string, where: Where): SourceResult {
  const origin = formatWhere(where);
  const base = { id: GENI_USER_SOURCE_ID, origin, priority: GENI_USER_PRIORITY };
  const invalid = (reason: string): SourceResult => ({
    ...base,
    status: 'invalid',
    users: [],
    problems: [{ where, message: reason }],
    reason,
  });
  if (output.length > MAX_GENI_USER_JSON) return invalid(`output is larger than ${MAX_GENI_USER_JSON} characters`);
  if (output.trim() === '') return { ...base, status: 'missing', users: [], problems: [], reason: 'geni-get geni_user printed nothing' };
  let doc: unknown;
  try {
    doc = JSON.parse(output);
  } catch (err) {
    return invalid(`output is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) return invalid('output is not a JSON array of users');
  if (doc.length > MAX_GENI_USERS) return invalid(`output lists more than ${MAX_GENI_USERS} users`);

  const problems: Problem[] = [];
  const users = new Map<string, { urn: string; keys: SshKey[] }>();
  let good = 0;
  doc.forEach((entry: unknown, i: number) => {
    const at: Where = { source: `${origin} user #${i + 1}` };
    const report = (message: string): void => {
      problems.push({ where: at, message });
    };
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return report('entry is not an object; skipped');
    const { urn, keys } = entry as { urn?: unknown; keys?: unknown };
    if (typeof urn !== 'string') return report('entry has no "urn" string; skipped');
    const m = USER_URN.exec(urn);
    if (!m) return report(`${JSON.stringify(urn.slice(0, 120))} is not a user URN (urn:publicid:IDN+<authority>+user+<name>); skipped`);
    const login = m[2]!;
    if (!LOGIN.test(login)) return report(`user URN name ${JSON.stringify(login)} is not a valid login; skipped`);
    if (keys === undefined) return report(`${login}: entry has no "keys" array; skipped`);
    if (!Array.isArray(keys)) return report(`${login}: "keys" is not an array; skipped`);
    if (keys.length > MAX_KEYS_PER_USER) return report(`${login}: more than ${MAX_KEYS_PER_USER} keys; skipped`);
    let user = users.get(login);
    if (!user) users.set(login, (user = { urn, keys: [] }));
    else if (user.urn !== urn) return report(`${login}: a second entry with another URN (${urn}); skipped`);
    good++;
    keys.forEach((k: unknown, j: number) => {
      const keyAt: Where = { source: `${origin} user #${i + 1} (${login}) key #${j + 1}` };
      if (typeof k !== 'string') {
        problems.push({ where: keyAt, message: 'key is not a string; skipped' });
        return;
      }
      // Keys stored by the testbed may end in a newline: white space around the string is not
      // part of the key (and cannot make two keys: anything inside is still refused).
      const key = tryParseKeyText(k.replace(/^\s+|\s+$/g, ''), keyAt);
      if (key instanceof Error) problems.push({ where: keyAt, message: `${key.message}; skipped` });
      else user.keys.push(key);
    });
  });
  if (good === 0 && problems.length > 0) {
    return { ...base, status: 'invalid', users: [], problems, reason: 'no usable user entry' };
  }
  const out: SliceUser[] = [...users].map(([login, u]) => ({ login, urn: u.urn, keys: u.keys }));
  return { ...base, status: 'ok', users: out, problems };
}

/**
 * Ask geni-get for geni_user. Undefined when there is no geni-get (no such source on this node);
 * a "missing" result when it exists but failed, timed out or printed nothing.
 */
export async function readGeniUser(
  paths: NodePaths,
  opts: { timeoutMs: number; logger?: Logger | undefined },
): Promise<SourceResult | undefined> {
  const exe = findGeniGet(paths);
  if (!exe) return undefined;
  const out = await runGeniGet(paths, 'geni_user', { timeoutMs: opts.timeoutMs, logger: opts.logger });
  if (!out?.ok) {
    return {
      id: GENI_USER_SOURCE_ID,
      origin: `geni-get geni_user (${exe})`,
      priority: GENI_USER_PRIORITY,
      status: 'missing',
      users: [],
      problems: [],
      reason: out ? out.reason : 'geni-get geni_user did not run',
    };
  }
  return parseGeniUser(out.output, out.where);
}
