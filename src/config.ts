// The operator's configuration: one TOML (or JSON, by extension) file, validated strictly.
// Keys may be written snake_case (`allow_non_loopback`, `slice_urn`) or camelCase; unknown keys
// and bad values are refused with an InputError naming the file, the line and the rule.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type { z as Z } from 'zod';
import { InputError } from './errors.js';
import type { NodePaths } from './paths.js';
import { FACT_NAMES, type FactName } from './sources/facts.js';
import { isLoopbackHost } from './api/loopback.js';
import { DEFAULT_KEY_TYPE_SETTING, isKnownKeyType, type KeyTypeSetting } from './api/key-listing.js';
import { KEY_TYPES } from './keys/sshkey.js';

/** [log] format (src/log.ts); kept here so that reading the config does not load the logger. */
export const LOG_FORMATS = ['auto', 'json', 'journal'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface Config {
  /** Any fact can be set by the operator; these win over every testbed source. */
  facts: Partial<Record<FactName, string>>;
  /** Operator CA (PEM files); absolute node paths are rebased under the root. */
  authority?: { cert: string; key: string };
  gid: { validityDays: number; renewBeforeDays: number };
  geniGet: { enabled: boolean; timeoutMs: number };
  api: {
    port: number;
    listen: string[];
    /** null: paths.socket; "": no socket; otherwise a node path (rebased under the root). */
    socket: string | null;
    allowNonLoopback: boolean;
    /** Which key types GetSSHKeys lists (`getsshkeys_key_types`); the others are served to sshd only. */
    getsshkeysKeyTypes: KeyTypeSetting;
  };
  /** format: auto (journal when stdout is the journal's stream, else JSON lines), json, journal. */
  log: { level: string; format: LogFormat };
  /** Slice hooks: their directory (null: paths.hooksDir; else a node path rebased under the root), time limit in seconds. */
  /** runner: auto (their own systemd unit under systemd, else a detached process), systemd, process. */
  hooks: { dir: string | null; timeout: number; runner: HookRunnerMode };
  /** Where the config came from: the file and the line of each fact it sets. */
  origin?: { file: string; factLines: Partial<Record<FactName, number>> };
}


// zod and smol-toml are loaded only when a config file is read: a node without one (the common
// case) starts without them. Both ship CommonJS builds, so they load synchronously.
const require = createRequire(import.meta.url);

/** Every default, used by the schema and, without loading it, by defaultConfig(). */
const DEFAULTS = {
  gid: { validityDays: 1826, renewBeforeDays: 30 },
  geniGet: { enabled: true, timeoutMs: 3000 },
  api: { port: 812, listen: ['127.0.0.1', '::1'] as string[], socket: null as string | null, allowNonLoopback: false, getsshkeysKeyTypes: DEFAULT_KEY_TYPE_SETTING },
  log: { level: 'info', format: 'auto' as LogFormat },
} as const;

/** The [hooks] section: its defaults and its schema (dir: a node path; timeout: seconds per hook). */
const HOOKS_DEFAULTS = { dir: null as string | null, timeout: 600, runner: 'auto' as HookRunnerMode };
export const HOOK_RUNNER_MODES = ['auto', 'systemd', 'process'] as const;
export type HookRunnerMode = (typeof HOOK_RUNNER_MODES)[number];

function hooksSchema(z: typeof import('zod').z) {
  return z
    .strictObject({
      dir: z.string().min(1, 'must name a directory').nullable().default(HOOKS_DEFAULTS.dir),
      timeout: z.number().positive('must be a positive number of seconds').max(86400, 'must be at most 86400 seconds (a day)').default(HOOKS_DEFAULTS.timeout),
      runner: z.enum(HOOK_RUNNER_MODES).default(HOOKS_DEFAULTS.runner),
    })
    .prefault({});
}

function buildSchema() {
  const { z } = require('zod') as typeof import('zod');
  const factsShape = Object.fromEntries(
    FACT_NAMES.map((name) => [name, z.string().trim().min(1, 'must not be empty').optional()]),
  ) as Record<FactName, Z.ZodOptional<Z.ZodString>>;

  return z.strictObject({
    facts: z.strictObject(factsShape).prefault({}),
    authority: z
      .strictObject({
        cert: z.string().min(1, 'must name the CA certificate (PEM) file'),
        key: z.string().min(1, 'must name the CA private key (PEM) file'),
      })
      .optional(),
    gid: z
      .strictObject({
        validityDays: z.number().int('must be a whole number of days').min(1).max(36500).default(DEFAULTS.gid.validityDays),
        renewBeforeDays: z.number().int('must be a whole number of days').min(0).default(DEFAULTS.gid.renewBeforeDays),
      })
      .prefault({})
      .refine((g) => g.renewBeforeDays < g.validityDays, {
        message: 'renew_before_days must be smaller than validity_days',
        path: ['renewBeforeDays'],
      }),
    geniGet: z
      .strictObject({
        enabled: z.boolean().default(DEFAULTS.geniGet.enabled),
        timeoutMs: z.number().int().min(1).max(600000).default(DEFAULTS.geniGet.timeoutMs),
      })
      .prefault({}),
    api: z
      .strictObject({
        port: z.number().int('must be a whole number').min(0).max(65535).default(DEFAULTS.api.port),
        listen: z
          .array(z.string().refine((a) => net.isIP(a) !== 0, 'must be an IP address literal'))
          .default(() => [...DEFAULTS.api.listen]),
        socket: z.string().nullable().default(DEFAULTS.api.socket),
        allowNonLoopback: z.boolean().default(DEFAULTS.api.allowNonLoopback),
        getsshkeysKeyTypes: keyTypeSetting(z),
      })
      .prefault({})
      .superRefine((api, ctx) => {
        if (api.allowNonLoopback) return;
        api.listen.forEach((addr, i) => {
          if (!isLoopbackHost(addr)) {
            ctx.addIssue({
              code: 'custom',
              path: ['listen', i],
              input: addr,
              message: 'is not a loopback address; set allow_non_loopback = true to serve the API off the node',
            });
          }
        });
      }),
    log: z.strictObject({ level: z.enum(LOG_LEVELS).default(DEFAULTS.log.level), format: z.enum(LOG_FORMATS).default(DEFAULTS.log.format) }).prefault({}),
    hooks: hooksSchema(z),
  });
}

const KEY_TYPE_RULE = `must be "planetlab", "all" or a list of key types (${KEY_TYPES.join(', ')})`;

/** `[api] getsshkeys_key_types`: "planetlab" | "all" | a non-empty list of known key types. */
function keyTypeSetting(z: typeof import('zod').z) {
  return z
    .union([z.literal(['planetlab', 'all']), z.array(z.string())], { error: KEY_TYPE_RULE })
    .superRefine((value, ctx) => {
      if (!Array.isArray(value)) return;
      if (value.length === 0) ctx.addIssue({ code: 'custom', input: value, message: 'must list at least one key type' });
      value.forEach((type, i) => {
        if (!isKnownKeyType(type)) ctx.addIssue({ code: 'custom', path: [i], input: type, message: `is not a key type sliceid knows (${KEY_TYPES.join(', ')})` });
      });
    })
    .transform((value): KeyTypeSetting => (Array.isArray(value) ? ([...new Set(value)] as KeyTypeSetting) : value))
    .default(DEFAULTS.api.getsshkeysKeyTypes);
}

let schemaMemo: ReturnType<typeof buildSchema> | undefined;
const schema = (): ReturnType<typeof buildSchema> => (schemaMemo ??= buildSchema());

/** The configuration with every default, as used when no file exists. */
export function defaultConfig(): Config {
  // What schema().parse({}) gives, member for member, without loading zod.
  return {
    facts: {},
    gid: { ...DEFAULTS.gid },
    geniGet: { ...DEFAULTS.geniGet },
    api: { ...DEFAULTS.api, listen: [...DEFAULTS.api.listen] },
    log: { ...DEFAULTS.log },
    hooks: { ...HOOKS_DEFAULTS },
  };
}

/**
 * Load the operator config: `file` when given (it must exist), else the first existing of
 * paths.configCandidates, else the defaults. Paths inside (authority, socket) are rebased under
 * the root; relative ones are taken from the config file's directory.
 */
export function loadConfig(paths: NodePaths, file?: string): { config: Config; file?: string } {
  let chosen: string | undefined;
  if (file !== undefined) {
    chosen = path.resolve(file);
    if (!fs.existsSync(chosen)) {
      throw new InputError({ source: chosen }, chosen, 'does not exist', 'Pass an existing config file with --config');
    }
  } else {
    chosen = paths.configCandidates.find((c) => fs.existsSync(c));
  }
  if (!chosen) return { config: defaultConfig() };
  return { config: parseConfig(fs.readFileSync(chosen, 'utf8'), chosen, paths), file: chosen };
}

/** Parse and validate config text; `file` names it in errors and decides TOML vs JSON. */
export function parseConfig(text: string, file: string, paths: NodePaths): Config {
  const json = file.toLowerCase().endsWith('.json');
  const { parse: parseToml, TomlError } = json ? { parse: undefined, TomlError: undefined } : (require('smol-toml') as typeof import('smol-toml'));
  let raw: unknown;
  try {
    raw = json ? JSON.parse(text) : parseToml!(text);
  } catch (err) {
    if (TomlError && err instanceof TomlError) {
      throw new InputError({ source: file, line: err.line }, text.split('\n')[err.line - 1]?.trim() ?? '', `is not valid TOML: ${firstLine(err.message)}`);
    }
    const msg = (err as Error).message;
    throw new InputError({ source: file, line: jsonErrorLine(msg, text) }, firstLine(msg), 'is not valid JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InputError({ source: file }, String(raw), 'is not a table of settings');
  }
  const spelled = new Map<string, string>(); // camelCase path -> the file's own spelling
  const camel = camelKeys(raw, [], [], spelled, file, text, json);
  const result = schema().safeParse(camel);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const more = result.error.issues.length - 1;
    // The setting as the file spells it, array indices as [n]: api.listen[1]
    const where = (p: readonly PropertyKey[]): string => {
      const keys = p.filter((k) => typeof k !== 'number').map(String);
      const base = spelled.get(keys.join('.')) ?? keys.map(toSnake).join('.');
      return base + p.filter((k) => typeof k === 'number').map((n) => `[${String(n)}]`).join('');
    };
    const suffix = more > 0 ? ` (and ${more} more problem${more > 1 ? 's' : ''})` : '';
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const tableKey = [...issue.path.map(String), key];
      const shown = where(tableKey);
      const table = issue.path.length ? `[${where(issue.path)}]` : 'the top level';
      const known = knownKeys(issue.path.map(String));
      throw new InputError(
        { source: file, line: keyLine(text, shown.split('.'), json) },
        shown,
        `is not a known setting in ${table} (known: ${known.join(', ')})${suffix}`,
      );
    }
    const shown = where(issue.path);
    const value = valueAt(camel, issue.path);
    throw new InputError(
      { source: file, line: keyLine(text, shown.replace(/\[\d+\]$/, '').split('.'), json) },
      value === undefined ? shown : typeof value === 'string' ? value : JSON.stringify(value),
      `is not valid for ${shown}: ${issue.message}${suffix}`,
    );
  }
  const config = result.data as Config;
  const dir = path.dirname(file);
  const rebase = (p: string): string => (path.isAbsolute(p) ? paths.under(p) : path.resolve(dir, p));
  if (config.authority) config.authority = { cert: rebase(config.authority.cert), key: rebase(config.authority.key) };
  if (config.api.socket) config.api.socket = rebase(config.api.socket);
  if (config.hooks.dir) config.hooks.dir = rebase(config.hooks.dir);
  const factLines: Partial<Record<FactName, number>> = {};
  for (const name of FACT_NAMES) {
    if (config.facts[name] === undefined) continue;
    const line = keyLine(text, (spelled.get(`facts.${name}`) ?? `facts.${name}`).split('.'), json);
    if (line !== undefined) factLines[name] = line;
  }
  config.origin = { file, factLines };
  return config;
}

/** snake_case -> camelCase */
export function toCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function toSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function camelKeys(
  value: unknown,
  camelPath: string[],
  filePath: string[],
  spelled: Map<string, string>,
  file: string,
  text: string,
  json: boolean,
): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    const ck = toCamel(key);
    const cp = [...camelPath, ck];
    const fp = [...filePath, key];
    if (Object.prototype.hasOwnProperty.call(out, ck)) {
      throw new InputError(
        { source: file, line: keyLine(text, fp, json) },
        fp.join('.'),
        `sets ${spelled.get(cp.join('.'))} a second time (snake_case and camelCase name the same setting)`,
      );
    }
    spelled.set(cp.join('.'), fp.join('.'));
    out[ck] = camelKeys(inner, cp, fp, spelled, file, text, json);
  }
  return out;
}

function knownKeys(tablePath: string[]): string[] {
  let shape: unknown = schema();
  for (const part of tablePath) {
    const s = unwrap(shape);
    shape = s?.shape?.[part];
  }
  const obj = unwrap(shape);
  return obj?.shape ? Object.keys(obj.shape).map(toSnake) : [];
}

function unwrap(s: unknown): { shape?: Record<string, unknown> } | undefined {
  let cur = s as { shape?: Record<string, unknown>; def?: { innerType?: unknown; in?: unknown; schema?: unknown } } | undefined;
  for (let i = 0; i < 8 && cur && !cur.shape; i++) {
    cur = (cur.def?.innerType ?? cur.def?.in ?? cur.def?.schema) as typeof cur;
  }
  return cur;
}

function valueAt(obj: unknown, p: readonly PropertyKey[]): unknown {
  let cur = obj;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k as string];
  }
  return cur;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function jsonErrorLine(message: string, text: string): number | undefined {
  const line = /line (\d+)/.exec(message);
  if (line) return Number(line[1]);
  const pos = /position (\d+)/.exec(message);
  if (pos) return text.slice(0, Number(pos[1])).split('\n').length;
  return undefined;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Best-effort line (1-based) of a setting in the config text: for TOML the `key =` line inside its
 * `[table]` (or a dotted `table.key =`), for JSON the first `"key":` after its table's key.
 */
export function keyLine(text: string, keyPath: string[], json: boolean): number | undefined {
  const lines = text.split('\n');
  const numeric = (k: string) => /^\d+$/.test(k);
  const keys = keyPath.filter((k) => !numeric(k));
  if (keys.length === 0) return undefined;
  const last = keys[keys.length - 1]!;
  const tables = keys.slice(0, -1);
  if (json) {
    let from = 0;
    for (const k of keys) {
      const re = new RegExp(`"${escapeRe(k)}"\\s*:`);
      const idx = lines.findIndex((l, i) => i >= from && re.test(l));
      if (idx < 0) return from > 0 ? from : undefined;
      from = idx;
    }
    return from + 1;
  }
  const keyRe = (k: string) => new RegExp(`^\\s*["']?${escapeRe(k)}["']?\\s*=`);
  const dotted = new RegExp(`^\\s*${tables.map(escapeRe).join('\\s*\\.\\s*')}\\s*\\.\\s*${escapeRe(last)}\\s*=`);
  let table: string | undefined = '';
  let tableLine: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const header = /^\s*\[\s*([^\]]+?)\s*\]/.exec(l);
    if (header) {
      table = header[1]!.replace(/\s*\.\s*/g, '.').replace(/["']/g, '');
      if (table === tables.join('.')) tableLine = i + 1;
      continue;
    }
    if (table === tables.join('.') && keyRe(last).test(l)) return i + 1;
    if (tables.length && table === '' && dotted.test(l)) return i + 1;
  }
  return tableLine;
}
