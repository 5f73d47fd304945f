// <root><HOMEDIR>/.ssh/authorized_keys of a user whose tmcc accounts entry carries no PUBKEY line
// (NFS-mounted testbeds). Comments and blank lines are skipped, sshd options before the key
// (from="...",no-pty ...) are stripped: they are not part of the key. Bad lines are reported.
// The file is the user's, not root's: it is read through src/fs/user-file.ts (sshd's StrictModes),
// and a report names file, line and rule, at most the key type and fingerprint, never the text.
import path from 'node:path';
import type { Problem, SliceUser, SourceResult, SourceStatus, SshKey } from './types.js';
import { fingerprintOf, isKeyType, tryParseKeyText } from './sshkey.js';
import { lineStatus, splitLines } from './lines.js';
import type { InputError } from '../errors.js';
import { readUserFile, USER_FILE_TIMEOUT_MS, type UserFileRequest, type UserFileOutcome } from '../fs/user-file.js';

/** How a user's file is read: readUserFile on a node; inside the guest for a shared host's guest (src/host/guest-user-file.ts). */
export type UserFileReader = (req: UserFileRequest) => Promise<UserFileOutcome>;

export const AUTHORIZED_KEYS_PREFIX = 'authorized_keys:';

/** Where the file is below the home directory. */
export const AUTHORIZED_KEYS_RELATIVE = '.ssh/authorized_keys';

/** A user's authorized_keys bigger than this is refused (about 2,000 RSA keys). */
export const MAX_AUTHORIZED_KEYS = 1024 * 1024;

export function authorizedKeysSourceId(login: string): string {
  return AUTHORIZED_KEYS_PREFIX + login;
}

/** Who the file belongs to: the ADDUSER fields (keys are ignored). */
export type AccountUser = Omit<SliceUser, 'keys'>;

const OPTION = /^[A-Za-z0-9-]+(?:="(?:[^"\\]|\\.)*")?$/;

/**
 * Split an authorized_keys line into its options and key text. Options are a comma-separated list
 * up to the first blank outside double quotes; inside quotes a backslash escapes a quote.
 */
export function splitOptions(line: string): { options: string; key: string } | { error: string } {
  const text = line.replace(/^[ \t]+/, '');
  const firstWord = /^[^ \t]*/.exec(text)![0];
  if (isKeyType(firstWord)) return { options: '', key: text };
  let i = 0;
  let quoted = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\' && text[i + 1] === '"') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ' ' || c === '\t') break;
  }
  if (quoted) return { error: 'options have an unterminated quoted value' };
  const options = text.slice(0, i);
  const parts: string[] = [];
  // Split on commas outside quotes.
  let start = 0;
  quoted = false;
  for (let j = 0; j < options.length; j++) {
    const c = options[j];
    if (quoted) {
      if (c === '\\' && options[j + 1] === '"') j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      parts.push(options.slice(start, j));
      start = j + 1;
    }
  }
  parts.push(options.slice(start));
  if (!parts.every((p) => OPTION.test(p))) {
    return { error: 'does not start with a key type, and what precedes the first blank is not a list of sshd options' };
  }
  const key = text.slice(i).replace(/^[ \t]+/, '');
  if (key === '') return { error: 'has options but no key' };
  return { options, key };
}

/** Parse authorized_keys bytes for `user`. */
export function parseAuthorizedKeys(data: Buffer | string, file: string, user: AccountUser, priority?: number): SourceResult {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const base = { id: authorizedKeysSourceId(user.login), origin: file, ...(priority === undefined ? {} : { priority }) };
  if (buf.length === 0) return { ...base, status: 'missing', users: [], problems: [], reason: `${file} is empty` };
  const input = splitLines(buf);
  const keys: SshKey[] = [];
  const problems: Problem[] = [];
  let good = 0;
  let lastFailed = false;
  for (const line of input.lines) {
    const where = { source: file, line: line.number };
    lastFailed = false;
    if (line.text === undefined) {
      problems.push({ where, message: 'line is not valid UTF-8; skipped' });
      lastFailed = true;
      continue;
    }
    // A CRLF line ending (file edited elsewhere) is tolerated; any other CR is refused with the key.
    const trimmed = line.text.replace(/^[ \t]+/, '').replace(/\r$/, '');
    if (trimmed === '' || trimmed.startsWith('#')) {
      good++;
      continue;
    }
    const split = splitOptions(trimmed);
    if ('error' in split) {
      problems.push({ where, message: `authorized_keys line ${split.error}; skipped` });
      lastFailed = true;
      continue;
    }
    const key = tryParseKeyText(split.key, where);
    if (key instanceof Error) {
      const after = split.options ? ' (after sshd options)' : '';
      problems.push({ where, message: `authorized_keys of ${user.login}${after}: ${keyProblem(key, split.key)}; skipped` });
      lastFailed = true;
      continue;
    }
    keys.push(key);
    good++;
  }
  const { status, reason } = lineStatus(input, lastFailed, good, problems.length);
  return { ...base, status, users: [{ ...user, keys }], problems, ...(reason ? { reason } : {}) };
}

/**
 * What is wrong with a key, without its text: the rule broken (with any quoted value in it, such as
 * an unknown type word or a name inside the blob, left out), the key type when it is one we know,
 * and the fingerprint of the blob when it is base64.
 */
const FORM = '"type base64 [comment]"';

export function keyProblem(err: InputError, keyText: string): string {
  const [type = '', blob = ''] = keyText.replace(/^[ \t]+/, '').split(/[ \t]+/, 2);
  const known = isKeyType(type) ? `${type} ` : '';
  const fingerprint = known && blob.length <= 4096 && /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(blob) && blob !== '' ? ` (${fingerprintOf(blob)})` : '';
  // Details after a colon describe the blob's bytes (lengths, names read from it): left out too.
  const rule = err.rule.replace(/:.*$/s, '').replace(/"(?:[^"\\]|\\.)*"/g, (q) => (q === FORM ? q : '(not shown)'));
  return `key ${known}${rule}${fingerprint}`;
}

/**
 * Read `<home>/.ssh/authorized_keys` (home already rebased under the root) as the user's own file
 * and parse it for `user`. A refused file (symlink, FIFO, wrong owner or modes, too big, too slow)
 * is an invalid source: the user's last good keys stay, and the reason names the rule.
 */
export async function readAuthorizedKeys(home: string, user: AccountUser, priority?: number, reader: UserFileReader = readUserFile): Promise<SourceResult> {
  const file = path.join(home, AUTHORIZED_KEYS_RELATIVE);
  const base = { id: authorizedKeysSourceId(user.login), origin: file, ...(priority === undefined ? {} : { priority }), users: [], problems: [] };
  if (user.uid === undefined) return { ...base, status: 'invalid', reason: `${file} not read: the accounts file gives ${user.login} no UID to check its owner against` };
  const read = await reader({ home, relative: AUTHORIZED_KEYS_RELATIVE, uid: user.uid, maxBytes: MAX_AUTHORIZED_KEYS, timeoutMs: USER_FILE_TIMEOUT_MS });
  if (read.kind === 'data') return parseAuthorizedKeys(read.data, file, user, priority);
  const status: SourceStatus = read.kind === 'missing' ? 'missing' : 'invalid';
  const reason = read.kind === 'refused' ? `refused (rule ${read.rule}): ${read.reason}` : read.reason;
  // Deleted or emptied by its owner (the home is there): her removal, applied through the shrink guard.
  if (read.kind === 'missing' && !read.home) return { ...base, status, reason, removedByOwner: { ...user, keys: [] } };
  return { ...base, status, reason };
}
