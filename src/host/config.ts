// The host daemon's config: the node's sections (applied to every guest), plus `[host]`
// (netns_dir, all_slices) and the `[[guest]]` entries (spec section 8). Paths written here are
// absolute host paths taken as written, never prefixed by --root.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { NodePaths } from '../paths.js';
import { defaultConfig, keyLine, parseConfig, type Config } from '../config.js';
import { InputError } from '../errors.js';
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

/**
 * Where things are in the config text, for errors that name the file and the line as the node's
 * config errors do: the line of a `[host]` key, of the n-th `[[guest]]` table and a key in it.
 */
class Lines {
  private readonly lines: string[];
  constructor(
    private readonly file: string,
    text: string,
    private readonly json: boolean,
  ) {
    this.lines = text.split('\n');
  }
  /** The line of the n-th (0-based) [[guest]] header (TOML), or of its `"name"` (JSON). */
  guest(i: number): number | undefined {
    const re = this.json ? /"name"\s*:/ : /^\s*\[\[\s*guest\s*\]\]/;
    let seen = -1;
    let inGuests = !this.json;
    for (let n = 0; n < this.lines.length; n++) {
      if (this.json && /"guest"\s*:/.test(this.lines[n]!)) inGuests = true;
      if (inGuests && re.test(this.lines[n]!) && ++seen === i) return n + 1;
    }
    return undefined;
  }
  /** The line of `key` in the n-th [[guest]] table, else of its header. */
  guestKey(i: number, key: string): number | undefined {
    const start = this.guest(i);
    if (start === undefined) return undefined;
    const end = this.guest(i + 1) ?? this.lines.length + 1;
    const re = this.json ? new RegExp(`"${key}"\\s*:`) : new RegExp(`^\\s*["']?${key}["']?\\s*=`);
    for (let n = (this.json ? start - 2 : start); n < end - 1; n++) if (n >= 0 && re.test(this.lines[n]!)) return n + 1;
    return start;
  }
  host(key?: string): number | undefined {
    return keyLine(this.lines.join('\n'), key ? ['host', key] : ['host'], this.json);
  }
  fail(line: number | undefined, value: string, rule: string): never {
    throw new InputError({ source: this.file, ...(line !== undefined ? { line } : {}) }, value, rule);
  }
}

/** TOML text with the [host] and [[guest]] tables blanked (line numbers kept): the node's sections. */
function nodeSections(text: string): string {
  let host = false;
  return text
    .split('\n')
    .map((l) => {
      const header = /^\s*\[{1,2}\s*([^\].]+)/.exec(l);
      if (header) host = ['host', 'guest'].includes(header[1]!.trim().replace(/["']/g, ''));
      return host ? '' : l;
    })
    .join('\n');
}

export function loadHostConfig(paths: NodePaths, file?: string): HostConfig {
  const chosen = file ?? paths.configCandidates.find((f) => fs.existsSync(f));
  const base = { netnsDir: paths.under('/var/run/netns'), allSlices: false, guests: [] as GuestSpec[], file: chosen };
  if (!chosen) return { ...base, node: defaultConfig() };
  const text = fs.readFileSync(chosen, 'utf8');
  const json = chosen.toLowerCase().endsWith('.json');
  const at: Lines = new Lines(chosen, text, json);
  let raw: Record<string, unknown>;
  try {
    raw = (json ? JSON.parse(text) : (require('smol-toml') as typeof import('smol-toml')).parse(text)) as Record<string, unknown>;
  } catch {
    // The node's parser says where (file, line) and why.
    parseConfig(text, chosen, paths);
    throw new Error(`${chosen}: cannot be parsed`);
  }
  const { host, guest, ...rest } = raw;
  const node = !Object.keys(rest).length ? defaultConfig() : json ? parseConfig(JSON.stringify(rest), `${chosen} (node sections).json`, paths) : parseConfig(nodeSections(text), chosen, paths);
  let netnsDir = base.netnsDir;
  let allSlices = false;
  const shown = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));
  if (host !== undefined) {
    if (typeof host !== 'object' || host === null || Array.isArray(host)) at.fail(at.host(), 'host', '[host] must be a table');
    for (const [k, v] of Object.entries(host)) {
      if (k === 'netns_dir') {
        if (typeof v !== 'string' || !v.startsWith('/')) at.fail(at.host(k), shown(v), 'is not valid for [host] netns_dir: it must be an absolute path');
        netnsDir = v;
      } else if (k === 'all_slices') {
        if (typeof v !== 'boolean') at.fail(at.host(k), shown(v), 'is not valid for [host] all_slices: all_slices must be true or false');
        allSlices = v;
      } else at.fail(at.host(k), k, 'is not a known setting in [host] (known: netns_dir, all_slices)');
    }
  }
  const guests: GuestSpec[] = [];
  const entries = guest === undefined ? [] : Array.isArray(guest) ? guest : at.fail(at.guest(0), 'guest', '[[guest]] must be an array of tables');
  entries.forEach((g: unknown, i: number) => {
    const where = `[[guest]] #${i + 1}`;
    if (typeof g !== 'object' || g === null) at.fail(at.guest(i), shown(g), `${where} must be a table`);
    const e = g as Record<string, unknown>;
    const named = typeof e.name === 'string' ? `${where} (${e.name})` : where;
    for (const k of Object.keys(e)) if (!['name', 'pid', 'netns', 'root', 'hostname'].includes(k)) at.fail(at.guestKey(i, k), k, `is not a known setting in ${named}: unknown key ${k} (known: name, pid, netns, root, hostname)`);
    if (typeof e.name !== 'string' || !GUEST_NAME.test(e.name)) at.fail(at.guestKey(i, 'name'), shown(e.name), `is not valid for ${where} name: name must match [-\\w.]{1,64}`);
    if ((e.pid === undefined) === (e.netns === undefined)) at.fail(at.guest(i), shown(e.name), `${named}: exactly one of pid and netns`);
    if (e.pid !== undefined && (!Number.isInteger(e.pid) || (e.pid as number) < 1)) at.fail(at.guestKey(i, 'pid'), shown(e.pid), `is not valid for ${named} pid: pid must be a process id`);
    for (const k of ['netns', 'root'] as const) if (e[k] !== undefined && (typeof e[k] !== 'string' || !(e[k] as string).startsWith('/'))) at.fail(at.guestKey(i, k), shown(e[k]), `is not valid for ${named} ${k}: ${k} must be an absolute path`);
    if (e.hostname !== undefined && (typeof e.hostname !== 'string' || !/^[-\w.]{1,253}$/.test(e.hostname))) at.fail(at.guestKey(i, 'hostname'), shown(e.hostname), `is not valid for ${named} hostname: it is not a host name`);
    if (guests.some((x) => x.name === e.name)) at.fail(at.guestKey(i, 'name'), shown(e.name), `${where}: guest ${e.name} listed twice`);
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
