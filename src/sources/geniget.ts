// geni-get: ProtoGENI's client for the testbed's per-node facts (a network call to boss, so it is
// run only at start-up and on an explicit refresh). Absent or failing means "no such fact".
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import type { NodePaths } from '../paths.js';
import type { Where } from '../errors.js';
import type { Logger } from '../log.js';

export interface GeniGetOutput {
  /** Output with surrounding white space trimmed. */
  readonly output: string;
  readonly where: Where;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** The first geni-get executable under the root, if any. */
export function findGeniGet(paths: NodePaths): string | undefined {
  return paths.geniGet.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/** Run `geni-get <command>`; undefined (with a log line) when absent, failing, slow or empty. */
export function geniGet(
  paths: NodePaths,
  command: string,
  opts: { timeoutMs: number; logger?: Logger },
): Promise<GeniGetOutput | undefined> {
  const exe = findGeniGet(paths);
  if (!exe) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(
      exe,
      [command],
      { timeout: opts.timeoutMs, maxBuffer: MAX_OUTPUT, encoding: 'utf8', killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) {
          opts.logger?.warn({ command, exe, err: err.message, stderr: stderr.slice(0, 200) }, 'geni-get failed; fact unavailable');
          resolve(undefined);
          return;
        }
        const output = stdout.trim();
        if (!output) {
          opts.logger?.warn({ command, exe }, 'geni-get printed nothing; fact unavailable');
          resolve(undefined);
          return;
        }
        resolve({ output, where: { source: `geni-get ${command} (${exe})` } });
      },
    );
  });
}
