// geni-get: ProtoGENI's client for the testbed's per-node facts (a network call to boss, so it is
// run only at start-up and on an explicit refresh). Absent or failing means "no such fact".
import fs from 'node:fs';
import { spawn } from 'node:child_process';
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

/** What one run of geni-get gave: its output, or why there is none. */
export type GeniGetResult =
  | { readonly ok: true; readonly output: string; readonly where: Where }
  | { readonly ok: false; readonly reason: string };

/** geni-get's own error line: `geni-get: <cmd>: <message>` on stderr, exit 1 (spec section 5). */
const ERROR_LINE = /^geni-get: ([^:\n]{1,64}): ([^\n]{1,200})/m;

/** A message from geni-get's stderr, cut to printable ASCII, or undefined when not in its format. */
export function geniGetError(stderr: string, command: string): string | undefined {
  const m = ERROR_LINE.exec(stderr);
  if (!m || m[1] !== command) return undefined;
  return m[2]!.replace(/\r$/, '').replace(/[^\x20-\x7e]/g, '?').trim() || undefined;
}

/**
 * Run `geni-get <command>` (`undefined` when the node has none), bounded by `timeoutMs`: geni-get
 * has no timeout of its own (a TCP connection to boss), so at the deadline its whole process group
 * is killed and the run counts as failed at once, even when a child of it still holds the pipes.
 * When geni-get exits, whatever it left running in its group is killed too.
 */
export function runGeniGet(
  paths: NodePaths,
  command: string,
  opts: { timeoutMs: number; logger?: Logger | undefined },
): Promise<GeniGetResult | undefined> {
  const exe = findGeniGet(paths);
  if (!exe) return Promise.resolve(undefined);
  const what = `geni-get ${command}`;
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let done = false;
    // Its own process group (detached), so that a deadline kills everything it started.
    const child = spawn(exe, [command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const finish = (result: GeniGetResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      if (!result.ok) opts.logger?.warn({ command, exe, reason: result.reason }, 'geni-get failed; fact unavailable');
      resolve(result);
    };
    const timer = setTimeout(() => {
      killGroup();
      finish({ ok: false, reason: `${what} gave no answer within ${opts.timeoutMs} ms and was killed` });
    }, opts.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_OUTPUT) {
        killGroup();
        finish({ ok: false, reason: `${what} printed more than ${MAX_OUTPUT} bytes` });
        return;
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errBytes < 4096) err.push(chunk);
      errBytes += chunk.length;
    });
    child.on('error', (e) => finish({ ok: false, reason: `${what} could not be run: ${e.message}` }));
    // geni-get is done: anything it left behind in its group goes, so the pipes close now.
    child.on('exit', killGroup);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const message = geniGetError(Buffer.concat(err).toString('utf8'), command);
        const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        finish({ ok: false, reason: message ? `${what}: ${message}` : `${what} ${how}` });
        return;
      }
      const output = Buffer.concat(out).toString('utf8').trim();
      if (!output) finish({ ok: false, reason: `${what} printed nothing` });
      else finish({ ok: true, output, where: { source: `${what} (${exe})` } });
    });
  });
}

/** Run `geni-get <command>`; undefined (with a log line) when absent, failing, slow or empty. */
export async function geniGet(
  paths: NodePaths,
  command: string,
  opts: { timeoutMs: number; logger?: Logger },
): Promise<GeniGetOutput | undefined> {
  const r = await runGeniGet(paths, command, opts);
  return r?.ok ? { output: r.output, where: r.where } : undefined;
}
