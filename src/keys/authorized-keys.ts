// <root><HOMEDIR>/.ssh/authorized_keys of a user whose tmcc accounts entry carries no PUBKEY line
// (NFS-mounted testbeds). Comments and blank lines are skipped, sshd options before the key
// (from="...",no-pty ...) are stripped: they are not part of the key. Bad lines are reported.
import type { Problem, SliceUser, SourceResult, SourceStatus, SshKey } from './types.js';
import { isKeyType, tryParseKeyText } from './sshkey.js';
import { lineStatus, readKeyFile, splitLines } from './lines.js';

export const AUTHORIZED_KEYS_PREFIX = 'authorized_keys:';

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
    return { error: `does not start with a key type, and ${JSON.stringify(options.slice(0, 60))} is not a list of sshd options` };
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
      const after = split.options ? ` (after options ${JSON.stringify(split.options.slice(0, 60))})` : '';
      problems.push({ where, message: `authorized_keys of ${user.login}${after}: ${key.message}; skipped` });
      lastFailed = true;
      continue;
    }
    keys.push(key);
    good++;
  }
  const { status, reason } = lineStatus(input, lastFailed, good, problems.length);
  return { ...base, status, users: [{ ...user, keys }], problems, ...(reason ? { reason } : {}) };
}

/** Read `file` (the caller has rebased HOMEDIR under the root) and parse it for `user`. */
export function readAuthorizedKeys(file: string, user: AccountUser, priority?: number): SourceResult {
  const read = readKeyFile(file);
  if (read.kind === 'data') return parseAuthorizedKeys(read.data, file, user, priority);
  const status: SourceStatus = read.kind === 'missing' ? 'missing' : 'invalid';
  return {
    id: authorizedKeysSourceId(user.login),
    origin: file,
    ...(priority === undefined ? {} : { priority }),
    status,
    users: [],
    problems: [],
    reason: read.reason,
  };
}
