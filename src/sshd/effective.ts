// Whether sshd takes the slice users' keys from sliceid, read from sshd's effective configuration
// (`sshd -T`: the global settings after every Include and default; per-user Match blocks are not
// applied). Used by `status`. sshd runs at most SSHD_T_TIMEOUT_MS, once per `status`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type { NodePaths } from '../paths.js';

export const SSHD_T_TIMEOUT_MS = 3000;

export type SshdKeysUse = 'files' | 'command' | 'files and command' | 'neither' | 'no sshd' | 'unknown';

export interface SshdState {
  readonly uses: SshdKeysUse;
  /** One sentence for status (what sshd uses, or why it is not known). */
  readonly detail: string;
  /** Set when sshd exists and takes the keys from neither the files nor the command. */
  readonly problem: string | undefined;
}

/** sshd's candidates under the root prefix, first existing one is used. */
export function sshdCandidates(paths: NodePaths): string[] {
  return [paths.under('/usr/sbin/sshd'), paths.under('/usr/local/sbin/sshd')];
}

/** The settings of `sshd -T` output that matter here (keys are lower case there). */
export function parseSshdT(text: string): { authorizedKeysFile: string[]; authorizedKeysCommand: string | undefined } {
  let files: string[] = [];
  let command: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    if (key === 'authorizedkeysfile') files = m[2]!.split(/\s+/).filter(Boolean);
    else if (key === 'authorizedkeyscommand') command = m[2] === 'none' ? undefined : m[2];
  }
  return { authorizedKeysFile: files, authorizedKeysCommand: command };
}

/** Classify parsed `sshd -T` settings against this node's key directory. */
export function classify(paths: NodePaths, settings: ReturnType<typeof parseSshdT>): SshdState {
  const wanted = `${paths.sshdKeysDir}/%u`;
  const files = settings.authorizedKeysFile.includes(wanted);
  const command = settings.authorizedKeysCommand !== undefined && /\bsliceid\b.*\bauthorized-keys\b/.test(settings.authorizedKeysCommand);
  if (files && command) return { uses: 'files and command', detail: `AuthorizedKeysFile includes ${wanted}, and AuthorizedKeysCommand runs sliceid too (the command is then redundant)`, problem: undefined };
  if (files) return { uses: 'files', detail: `AuthorizedKeysFile includes ${wanted}`, problem: undefined };
  if (command) {
    return { uses: 'command', detail: `AuthorizedKeysCommand runs sliceid (a Node process per login attempt; AuthorizedKeysFile ${wanted} costs nothing)`, problem: undefined };
  }
  return {
    uses: 'neither',
    detail: `sshd takes no keys from sliceid (AuthorizedKeysFile ${settings.authorizedKeysFile.join(' ') || 'none'})`,
    problem: `sshd does not read the slice users' keys: add "AuthorizedKeysFile .ssh/authorized_keys ${wanted}" (see the sshd_config.d example shipped with sliceid)`,
  };
}

/** Run `sshd -T` (bounded in time) and say whether it uses the key files or the command. */
export function sshdState(paths: NodePaths): Promise<SshdState> {
  const sshd = sshdCandidates(paths).find((f) => fs.existsSync(f));
  if (!sshd) return Promise.resolve({ uses: 'no sshd', detail: 'no sshd on this node', problem: undefined });
  const config = paths.under('/etc/ssh/sshd_config');
  const args = fs.existsSync(config) ? ['-T', '-f', config] : ['-T'];
  return new Promise((resolve) => {
    execFile(sshd, args, { timeout: SSHD_T_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as { killed?: boolean }).killed ? `no answer within ${SSHD_T_TIMEOUT_MS} ms` : firstLine(stderr) || err.message;
        resolve({ uses: 'unknown', detail: `${sshd} -T failed: ${why}`, problem: undefined });
        return;
      }
      resolve(classify(paths, parseSshdT(stdout)));
    });
  });
}

const firstLine = (s: string): string => s.split('\n').find((l) => l.trim())?.trim() ?? '';
