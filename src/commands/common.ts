// Options every command shares (--root, --config, --json) and how they become paths and config.
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from '../builtins.js';
import { nodePaths, type NodePaths } from '../paths.js';
import { loadConfig, type Config } from '../config.js';
import { LOCK_NAME, lockHolder } from '../fs/lock.js';

export const commonOptions = {
  root: { type: 'string', default: '/' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** parseArgs with the common options plus `extra`; a usage error becomes a UsageError. */
export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], extra: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...commonOptions, ...extra }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface Setup {
  readonly paths: NodePaths;
  readonly config: Config;
  readonly configFile: string | undefined;
}

export function setup(values: { root?: string | undefined; config?: string | undefined }): Setup {
  const paths = nodePaths(values.root ?? '/');
  const { config, file } = loadConfig(paths, values.config);
  return { paths, config, configFile: file };
}

/** Run a command body: usage errors exit 2, refused input and other errors exit 1, one line on stderr. */
export async function guard(usage: string, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sliceid: ${err.message}\n${usage}`);
      return 2;
    }
    process.stderr.write(`sliceid: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

type Parsed<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<typeof parse<O>>;

/**
 * A command's `main`: parses the common options plus `extra`, prints `usage` for --help, and runs
 * `body` under `guard` (usage errors exit 2, anything else 1, one line on stderr).
 */
export function command<const O extends NonNullable<ParseArgsConfig['options']>>(
  usage: string,
  extra: O,
  allowPositionals: boolean,
  body: (parsed: Parsed<O>) => Promise<number> | number,
): (args: string[]) => Promise<number> {
  return (args) =>
    guard(usage, () => {
      const parsed = parse(args, extra, allowPositionals);
      if ((parsed.values as { help?: boolean }).help) {
        process.stdout.write(usage);
        return 0;
      }
      return body(parsed);
    });
}

/**
 * The running daemon of this root: the process that holds its state directory's lock, as the
 * kernel lists it (src/fs/lock.ts). The one answer to "is it running?" for every command.
 */
export function runningDaemon(paths: NodePaths): { pid: number } | { running: boolean; why: string } {
  const lock = path.join(paths.stateDir, LOCK_NAME);
  const state = lockHolder(paths.stateDir);
  if (!state.held) return { running: false, why: `no running daemon on ${paths.root} (nothing holds ${lock})` };
  if (state.pid === undefined) return { running: true, why: `a daemon holds ${lock}, but its pid cannot be told (no /proc/locks)` };
  return { pid: state.pid };
}
