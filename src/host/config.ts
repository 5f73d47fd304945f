// The host daemon's config: the node's sections (applied to every guest), plus `[host]`
// (netns_dir, all_slices) and the `[[guest]]` entries (spec section 8). Paths written here are
// absolute host paths taken as written, never prefixed by --root.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { NodePaths } from '../paths.js';
import { defaultConfig, parseConfig, type Config } from '../config.js';
import type { GuestSpec } from './guest.js';

/** A guest's name: the vnode id. */
export const GUEST_NAME = /^[-\w.]{1,64}$/;

const require = createRequire(import.meta.url);

export interface HostConfig {
  readonly node: Config;
  readonly netnsDir: string;
  readonly allSlices: boolean;
  readonly guests: GuestSpec[];
  readonly file: string | undefined;
}

function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

export function loadHostConfig(paths: NodePaths, file?: string): HostConfig {
  const chosen = file ?? paths.configCandidates.find((f) => fs.existsSync(f));
  const base = { netnsDir: paths.under('/var/run/netns'), allSlices: false, guests: [] as GuestSpec[], file: chosen };
  if (!chosen) return { ...base, node: defaultConfig() };
  const text = fs.readFileSync(chosen, 'utf8');
  const json = chosen.toLowerCase().endsWith('.json');
  const raw = (json ? JSON.parse(text) : (require('smol-toml') as typeof import('smol-toml')).parse(text)) as Record<string, unknown>;
  const { host, guest, ...rest } = raw;
  const node = Object.keys(rest).length ? parseConfig(JSON.stringify(rest), `${chosen} (node sections).json`, paths) : defaultConfig();
  let netnsDir = base.netnsDir;
  let allSlices = false;
  if (host !== undefined) {
    if (typeof host !== 'object' || host === null || Array.isArray(host)) fail(chosen, '[host] must be a table');
    for (const [k, v] of Object.entries(host)) {
      if (k === 'netns_dir') {
        if (typeof v !== 'string' || !v.startsWith('/')) fail(chosen, '[host] netns_dir must be an absolute path');
        netnsDir = v;
      } else if (k === 'all_slices') {
        if (typeof v !== 'boolean') fail(chosen, '[host] all_slices must be true or false');
        allSlices = v;
      } else fail(chosen, `[host] ${k}: unknown setting (known: netns_dir, all_slices)`);
    }
  }
  const guests: GuestSpec[] = [];
  const entries = guest === undefined ? [] : Array.isArray(guest) ? guest : fail(chosen, '[[guest]] must be an array of tables');
  entries.forEach((g: unknown, i: number) => {
    const where = `[[guest]] #${i + 1}`;
    if (typeof g !== 'object' || g === null) fail(chosen, `${where} must be a table`);
    const e = g as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['name', 'pid', 'netns', 'root', 'hostname'].includes(k)) fail(chosen, `${where}: unknown key ${k}`);
    if (typeof e.name !== 'string' || !GUEST_NAME.test(e.name)) fail(chosen, `${where}: name must match [-\\w.]{1,64}`);
    if ((e.pid === undefined) === (e.netns === undefined)) fail(chosen, `${where} (${e.name}): exactly one of pid and netns`);
    if (e.pid !== undefined && (!Number.isInteger(e.pid) || (e.pid as number) < 1)) fail(chosen, `${where} (${e.name}): pid must be a process id`);
    for (const k of ['netns', 'root'] as const) if (e[k] !== undefined && (typeof e[k] !== 'string' || !(e[k] as string).startsWith('/'))) fail(chosen, `${where} (${e.name}): ${k} must be an absolute path`);
    if (e.hostname !== undefined && (typeof e.hostname !== 'string' || !/^[-\w.]{1,253}$/.test(e.hostname))) fail(chosen, `${where} (${e.name}): hostname is not a host name`);
    if (guests.some((x) => x.name === e.name)) fail(chosen, `${where}: guest ${e.name} listed twice`);
    guests.push({
      name: e.name,
      from: 'config',
      ...(e.pid !== undefined ? { pid: e.pid as number } : {}),
      ...(e.netns !== undefined ? { netns: e.netns as string } : {}),
      ...(e.root !== undefined ? { root: e.root as string } : {}),
      ...(e.hostname !== undefined ? { hostname: e.hostname as string } : {}),
    });
  });
  return { node, netnsDir, allSlices, guests, file: chosen };
}
