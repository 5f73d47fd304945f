// Reloading the operator config in the running daemon (SIGHUP, or the config file changed): the
// new file is read and validated as at start; an invalid one changes nothing (the daemon keeps the
// config it runs with and says why, in the log and in `status`). What a refresh reads (facts,
// authority, gid, geni_get), GetSSHKeys' key types and the log level apply at once; the settings
// that the listeners and the hook runner were made with ([api] port, listen, socket,
// allow_non_loopback; [hooks] dir, timeout) apply at the next restart, and until then `status`
// says that a restart is needed.
import type { Config } from '../config.js';
import { isoTime } from '../time.js';

/** The settings a reload cannot apply (they need new listeners or a new hook runner). */
const AT_RESTART: ReadonlyArray<{ name: string; get: (c: Config) => unknown }> = [
  { name: '[api] port', get: (c) => c.api.port },
  { name: '[api] listen', get: (c) => c.api.listen },
  { name: '[api] socket', get: (c) => c.api.socket },
  { name: '[api] allow_non_loopback', get: (c) => c.api.allowNonLoopback },
  { name: '[hooks] dir', get: (c) => c.hooks.dir },
  { name: '[hooks] timeout', get: (c) => c.hooks.timeout },
];

export interface ConfigState {
  /** The config file the daemon runs with (undefined: none, the defaults). */
  readonly file: string | undefined;
  /** When it was last loaded (ms since the epoch). */
  readonly loadedAt: number;
  /** Why the last reload was refused (the file as it is now is invalid), else undefined. */
  readonly error: string | undefined;
  /** Settings the file changes that take effect only at a restart, as "name: old -> new". */
  readonly restart: readonly string[];
}

export interface Reload {
  /** The config the daemon runs with from now on. */
  readonly config: Config;
  readonly state: ConfigState;
}

const shown = (v: unknown): string => (v === null ? 'default' : JSON.stringify(v));

/**
 * Merge a newly loaded config into the running one: everything applies except the settings of
 * AT_RESTART, which keep the values the daemon started with (`running`) and are listed.
 */
export function applyReload(running: Config, loaded: { config: Config; file: string | undefined }, now = Date.now()): Reload {
  const next = loaded.config;
  const restart = AT_RESTART.filter((s) => JSON.stringify(s.get(running)) !== JSON.stringify(s.get(next))).map(
    (s) => `${s.name}: ${shown(s.get(running))} -> ${shown(s.get(next))}`,
  );
  const config: Config = {
    ...next,
    api: { ...next.api, port: running.api.port, listen: running.api.listen, socket: running.api.socket, allowNonLoopback: running.api.allowNonLoopback },
    hooks: running.hooks,
  };
  return { config, state: { file: loaded.file, loadedAt: now, error: undefined, restart } };
}

/** The `status` lines (faults) of a config state: a refused reload, settings waiting for a restart. */
export function configFaults(state: ConfigState): string[] {
  const out: string[] = [];
  if (state.error) out.push(`config not reloaded, the daemon keeps the one it loaded at ${isoTime(state.loadedAt)}: ${state.error}`);
  if (state.restart.length) out.push(`config: ${state.restart.join('; ')}: takes effect at the next restart (systemctl restart sliceid, or service sliceid restart)`);
  return out;
}
