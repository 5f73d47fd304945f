// The tmcc `accounts` file (Emulab's tmcd `accounts` reply as cached on the node):
//   ADDGROUP NAME=myproj GID=6005
//   ADDUSER LOGIN=alice PSWD=* UID=10001 GID=6005 ROOT=1 NAME="Alice Smith" HOMEDIR=/users/alice ...
//   PUBKEY LOGIN=alice KEY="ssh-rsa AAAA... alice@laptop"
//   SFSKEY KEY="..."
// Good lines are used, every other line is reported with file:line and skipped.
import type { Problem, SliceUser, SourceResult, SourceStatus, SshKey } from './types.js';
import { tryParseKeyText } from './sshkey.js';
import { lineStatus, readKeyFile, splitLines, type Lines } from './lines.js';

export const ACCOUNTS_SOURCE_ID = 'tmcc:accounts';

export interface AccountsGroup {
  readonly name: string;
  readonly gid: number;
}

export interface AccountsSource extends SourceResult {
  readonly groups: readonly AccountsGroup[];
  /** Logins with at least one PUBKEY line, good or bad (the others may have keys in authorized_keys). */
  readonly pubkeyLogins: ReadonlySet<string>;
}

/** Emulab login names (tmcd and the client scripts use `[-\w]+`). */
export const LOGIN = /^[-\w]{1,64}$/;
const PUBKEY = /^PUBKEY LOGIN=([-\w]+) KEY="(.*)"$/s;
const FIELD = /([A-Z][A-Z0-9_]*)=(?:"(.*?)"(?= [A-Z][A-Z0-9_]*=|$)|([^ "]*)(?= |$)) ?/sy;
// Lines tmcd sends that carry nothing sliceid uses.
const IGNORED = new Set(['SFSKEY']);
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** KEY=VALUE fields of an ADDUSER/ADDGROUP line; quoted values may hold spaces and quotes. */
export function parseFields(rest: string): Map<string, string> | string {
  const out = new Map<string, string>();
  FIELD.lastIndex = 0;
  while (FIELD.lastIndex < rest.length) {
    const at = FIELD.lastIndex;
    const m = FIELD.exec(rest);
    if (!m || m[0].length === 0) return `cannot read a KEY=VALUE field at column ${at + 1}`;
    const key = m[1]!;
    if (out.has(key)) return `field ${key} appears twice`;
    out.set(key, m[2] ?? m[3] ?? '');
  }
  return out;
}

function uint(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 0xffffffff ? n : undefined;
}

interface Builder {
  login: string;
  uid?: number;
  gid?: number;
  name?: string;
  email?: string;
  homedir?: string;
  hasAddUser: boolean;
  keys: SshKey[];
}

/** Parse accounts data already split into lines. `source` names the file in problems. */
export function parseAccountsLines(input: Lines, source: string): AccountsSource {
  const problems: Problem[] = [];
  const users = new Map<string, Builder>();
  const groups: AccountsGroup[] = [];
  const pubkeyLogins = new Set<string>();
  let good = 0;
  let lastFailed = false;

  const builder = (login: string): Builder => {
    let b = users.get(login);
    if (!b) users.set(login, (b = { login, hasAddUser: false, keys: [] }));
    return b;
  };

  for (const line of input.lines) {
    const where = { source, line: line.number };
    const report = (message: string): void => {
      problems.push({ where, message });
      lastFailed = true;
    };
    lastFailed = false;
    const text = line.text;
    if (text === undefined) {
      report('line is not valid UTF-8; skipped');
      continue;
    }
    if (text === '') continue;
    if (text.startsWith('PUBKEY ')) {
      const m = PUBKEY.exec(text);
      if (!m) {
        report('PUBKEY line is not PUBKEY LOGIN=<login> KEY="<key>"; skipped');
        continue;
      }
      const login = m[1]!;
      if (!LOGIN.test(login)) {
        report(`PUBKEY login ${JSON.stringify(login)} is not a valid login; skipped`);
        continue;
      }
      pubkeyLogins.add(login);
      const key = tryParseKeyText(m[2]!, where);
      if (key instanceof Error) {
        report(`PUBKEY for ${login}: ${key.message}; skipped`);
        continue;
      }
      builder(login).keys.push(key);
      good++;
      continue;
    }
    if (CONTROL.test(text)) {
      report('line contains control characters; skipped');
      continue;
    }
    const space = text.indexOf(' ');
    const word = space < 0 ? text : text.slice(0, space);
    if (IGNORED.has(word)) {
      good++;
      continue;
    }
    if (word === 'ADDUSER' || word === 'ADDGROUP') {
      const fields = parseFields(space < 0 ? '' : text.slice(space + 1));
      if (typeof fields === 'string') {
        report(`${word} line: ${fields}; skipped`);
        continue;
      }
      if (word === 'ADDGROUP') {
        const name = fields.get('NAME');
        const gid = uint(fields.get('GID'));
        if (!name || !/^[-\w]+$/.test(name) || gid === undefined) {
          report('ADDGROUP line needs NAME=<group> GID=<number>; skipped');
          continue;
        }
        groups.push({ name, gid });
        good++;
        continue;
      }
      const login = fields.get('LOGIN');
      if (login === undefined || !LOGIN.test(login)) {
        report(`ADDUSER line has no valid LOGIN (${JSON.stringify(login ?? '')}); skipped`);
        continue;
      }
      const uid = uint(fields.get('UID'));
      if (uid === undefined) {
        report(`ADDUSER ${login}: UID ${JSON.stringify(fields.get('UID') ?? '')} is not a number; skipped`);
        continue;
      }
      const homedir = fields.get('HOMEDIR');
      if (homedir !== undefined && homedir !== '' && !homedir.startsWith('/')) {
        report(`ADDUSER ${login}: HOMEDIR ${JSON.stringify(homedir)} is not an absolute path; skipped`);
        continue;
      }
      const b = builder(login);
      if (b.hasAddUser) {
        report(`ADDUSER ${login} appears twice; the second one is skipped`);
        continue;
      }
      b.hasAddUser = true;
      b.uid = uid;
      const gid = uint(fields.get('GID'));
      if (gid !== undefined) b.gid = gid;
      const name = fields.get('NAME');
      if (name) b.name = name;
      const email = fields.get('EMAIL');
      if (email) b.email = email;
      if (homedir) b.homedir = homedir;
      good++;
      continue;
    }
    report(`unknown accounts line ${JSON.stringify(word.slice(0, 40))}; skipped`);
  }

  const { status, reason } = lineStatus(input, lastFailed, good, problems.length, true);
  return {
    id: ACCOUNTS_SOURCE_ID,
    origin: source,
    status,
    priority: 0,
    users: [...users.values()].map(toUser),
    problems,
    groups,
    pubkeyLogins,
    ...(reason ? { reason } : {}),
  };
}

function toUser(b: Builder): SliceUser {
  const u: { -readonly [K in keyof SliceUser]: SliceUser[K] } = { login: b.login, keys: b.keys };
  if (b.uid !== undefined) u.uid = b.uid;
  if (b.gid !== undefined) u.gid = b.gid;
  if (b.name !== undefined) u.name = b.name;
  if (b.email !== undefined) u.email = b.email;
  if (b.homedir !== undefined) u.homedir = b.homedir;
  return u;
}

/** Parse accounts text or bytes. */
export function parseAccounts(data: Buffer | string, source: string): AccountsSource {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (buf.length === 0) return emptyAccounts(source, 'missing', `${source} is empty`);
  return parseAccountsLines(splitLines(buf), source);
}

/** Read and parse the accounts file: missing when absent or empty, invalid when unreadable. */
export function readAccounts(file: string): AccountsSource {
  const read = readKeyFile(file);
  if (read.kind === 'missing') return emptyAccounts(file, 'missing', read.reason);
  if (read.kind === 'error') return emptyAccounts(file, 'invalid', read.reason);
  return parseAccountsLines(splitLines(read.data), file);
}

function emptyAccounts(origin: string, status: SourceStatus, reason: string): AccountsSource {
  return { id: ACCOUNTS_SOURCE_ID, origin, status, priority: 0, users: [], problems: [], reason, groups: [], pubkeyLogins: new Set() };
}
