// One guest of a shared host, served by the host daemon: the node pipeline (src/daemon/refresh.ts)
// run unchanged on a private staging tree of the host (/var/lib/sliceid/guests/<name>/root, 0700,
// holding the guest's state and its own SQLite cache), fed with the guest's inputs copied in
// through guest-fs and the host's tmcc cache of the guest (which wins), and its outputs (identity
// files, sshd key files) copied out into the guest through guest-fs. Nothing of the guest is run.
import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { nodePaths, type NodePaths } from '../paths.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { ReleasableKeyCache } from '../store/releasable.js';
import { NodeView } from '../daemon/data.js';
import { refreshOnce } from '../daemon/refresh.js';
import { ShrinkGuard } from '../daemon/shrink.js';
import { startApi, type ApiServer, type ApiAddress } from '../api/server.js';
import type { NodeManagerData, SliverRecord } from '../api/types.js';
export { GUEST_NAME } from './config.js';
import { openGuestRoot, GuestPathError, type GuestFs } from './guest-fs.js';
import { listenInNetns, listenUnixInGuest, type Handed } from './listen.js';
import { guestUserFileReader } from './guest-user-file.js';

export interface GuestSpec {
  /** The vnode id, `[-\w.]{1,64}`. */
  readonly name: string;
  readonly pid?: number;
  readonly netns?: string;
  readonly root?: string;
  readonly hostname?: string;
  readonly from: 'config' | 'netns';
}


export interface GuestStatus {
  name: string;
  from: string;
  slice: string | undefined;
  files: string[];
  endpoints: string[];
  lastRefresh: string | undefined;
  problems: string[];
  present: boolean;
  pid?: number;
  netns?: string;
}

/** Guest files copied into the staging tree (the inputs of the node pipeline). */
const INPUT_FILES = ['/etc/hostname', '/etc/passwd', '/etc/machine-id'];
const BOOT = '/var/emulab/boot';
const MAX_ENTRIES = 256;
const IDENTITY_FILES = ['slicename', 'slice.gid', 'node.gid'];
const KEYS_DIR = '/etc/sliceid/authorized_keys';

export interface GuestOptions {
  readonly hostPaths: NodePaths;
  readonly config: Config;
  readonly logger: Logger;
  /** The API port in guests (812). */
  readonly port: number;
  readonly listen: readonly string[];
  readonly socket: string;
  /** `[host] all_slices`: list every present guest's slice too (NodeManager's answer). */
  readonly allSlices?: () => boolean;
  /** The other guests (for all_slices) and a counter that moves when that set changes. */
  readonly peers?: () => { guests: Guest[]; generation: number };
  /** After each refresh and listen: the slice hooks (src/host/hooks.ts) run once it is served. */
  readonly onServed?: (guest: Guest) => void;
}

/** What a guest's endpoints answer: its own slice, and with all_slices every present guest's. */
class GuestData implements NodeManagerData {
  constructor(
    private readonly own: NodeView,
    private readonly opts: GuestOptions,
  ) {}
  private peers(): { guests: Guest[]; generation: number } {
    return this.opts.allSlices?.() && this.opts.peers ? this.opts.peers() : { guests: [], generation: 0 };
  }
  slicename(): string | undefined {
    return this.own.slicename();
  }
  sliceKeys(): readonly string[] {
    return this.own.sliceKeys();
  }
  sliceUid(): number | undefined {
    return this.own.sliceUid();
  }
  record(): SliverRecord | undefined {
    return this.own.record();
  }
  version(): number {
    const { guests, generation } = this.peers();
    return this.own.version() + guests.reduce((n, g) => n + g.view.version(), 0) + generation * 2 ** 32 + (this.opts.allSlices?.() ? 2 ** 48 : 0);
  }
  others(): Array<{ name: string; keys: readonly string[]; uid: number | undefined }> {
    const out: Array<{ name: string; keys: readonly string[]; uid: number | undefined }> = [];
    for (const g of this.peers().guests) {
      const name = g.view.slicename();
      if (name !== undefined && g.status().present) out.push({ name, keys: g.view.sliceKeys(), uid: g.view.sliceUid() });
    }
    return out;
  }
}

/** A guest's root, refused when it is the host's own root (a process that never left it). */
function openGuestRootChecked(root: string): GuestFs {
  const gfs = openGuestRoot(root);
  const hostRoot = fs.statSync('/');
  const same = gfs.withDir('/', false, (dir) => {
    const st = fs.statSync(dir);
    return st.ino === hostRoot.ino && st.dev === hostRoot.dev;
  });
  if (same) {
    gfs.close();
    throw new Error(`${root} is the host's own root, not a guest's: nothing read or written there`);
  }
  return gfs;
}

export class Guest {
  readonly paths: NodePaths;
  /** Its SQLite connection is open only while used (src/store/releasable.ts). */
  readonly cache: ReleasableKeyCache;
  readonly view: NodeView;
  private api: ApiServer | undefined;
  private unix: net.Server | undefined;
  private handed: Handed[] = [];
  private problems: string[] = [];
  private listenProblems: string[] = [];
  private files: string[] = [];
  private lastRefresh: string | undefined;
  private present = true;
  private readonly logger: Logger;

  constructor(
    public spec: GuestSpec,
    private readonly opts: GuestOptions,
  ) {
    this.logger = opts.logger.child({ guest: spec.name });
    this.paths = nodePaths(opts.hostPaths.under(`/var/lib/sliceid/guests/${spec.name}/root`));
    fs.mkdirSync(path.dirname(this.paths.root), { recursive: true, mode: 0o700 });
    fs.chmodSync(path.dirname(this.paths.root), 0o700);
    fs.mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o700 });
    this.cache = new ReleasableKeyCache(this.paths.database, { logger: this.logger });
    this.view = new NodeView(this.cache, opts.config.api.getsshkeysKeyTypes);
  }

  private readonly shrinkGuard = new ShrinkGuard();
  /** The guest paths of the slice users' authorized_keys files the last refresh named (watched). */
  userKeyFiles: readonly string[] = [];
  /** The last refresh deferred a shrink (src/daemon/shrink.ts): refresh again after this many ms to confirm it. */
  confirmInMs: number | undefined;

  /** The guest's root through guest-fs (the caller closes it); undefined when none is known. */
  openFs(): GuestFs | undefined {
    const { root } = this.where();
    return root ? openGuestRootChecked(root) : undefined;
  }

  /** The guest's network namespace and root as the host sees them. */
  private where(): { netns: string | undefined; root: string | undefined } {
    const s = this.spec;
    return {
      netns: s.netns ?? (s.pid ? `/proc/${s.pid}/ns/net` : undefined),
      root: s.root ?? (s.pid ? `/proc/${s.pid}/root` : undefined),
    };
  }

  status(): GuestStatus {
    const eps = (this.api?.addresses ?? []).map((a: ApiAddress) => ('socket' in a ? a.socket : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`));
    return {
      name: this.spec.name,
      from: this.spec.from,
      slice: this.view.slicename(),
      files: this.files,
      endpoints: eps,
      lastRefresh: this.lastRefresh,
      problems: [...this.listenProblems, ...this.problems],
      present: this.present,
      ...this.where().netns ? { netns: this.where().netns } : {},
      ...(this.spec.pid ? { pid: this.spec.pid } : {}),
    };
  }

  /** Read the guest's inputs and the host's tmcc cache of it into the staging tree. */
  private stage(gfs: GuestFs | undefined, problems: string[]): void {
    const root = this.paths.root;
    const copy = (guestPath: string, data: Buffer | undefined): void => {
      const dest = path.join(root, guestPath);
      fs.rmSync(dest, { force: true, recursive: true });
      if (data === undefined) return;
      fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
      fs.writeFileSync(dest, data, { mode: 0o644 });
    };
    const read = (p: string): Buffer | undefined => {
      try {
        return gfs?.read(p);
      } catch (err) {
        problems.push(err instanceof GuestPathError ? `refused ${err.message}` : `${p}: ${(err as Error).message}`);
        return undefined;
      }
    };
    fs.rmSync(path.join(root, BOOT), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, BOOT), { recursive: true, mode: 0o755 });
    for (const f of INPUT_FILES) copy(f, read(f));
    if (gfs) {
      for (const name of gfs.list(BOOT).slice(0, MAX_ENTRIES)) {
        if (!/^[-\w.]{1,64}$/.test(name)) continue;
        const full = `${BOOT}/${name}`;
        if (name === 'tmcc' || name.startsWith('tmcc.')) {
          for (const inner of gfs.list(full).slice(0, MAX_ENTRIES)) if (/^[-\w.]{1,64}$/.test(inner)) copy(`${full}/${inner}`, read(`${full}/${inner}`));
        } else copy(full, read(full));
      }
    }
    // The host's copy of the guest's tmcc cache wins over the guest's own.
    const hostTmcc = this.opts.hostPaths.tmccDir(this.spec.name);
    let hostFiles: string[] = [];
    try {
      hostFiles = fs.readdirSync(hostTmcc).filter((n) => /^[-\w.]{1,64}$/.test(n)).slice(0, MAX_ENTRIES);
    } catch {
      // none
    }
    for (const n of hostFiles) {
      let data: Buffer;
      try {
        const st = fs.lstatSync(path.join(hostTmcc, n));
        if (!st.isFile() || st.size > 1 << 24) continue;
        data = fs.readFileSync(path.join(hostTmcc, n));
      } catch {
        continue;
      }
      for (const dir of ['tmcc', `tmcc.${this.spec.name}`]) copy(`${BOOT}/${dir}/${n}`, data);
    }
  }

  /** Copy the pipeline's outputs into the guest. */
  private push(gfs: GuestFs, problems: string[]): string[] {
    const written: string[] = [];
    const attempt = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (const f of IDENTITY_FILES) {
      const src = path.join(this.paths.root, 'etc', f);
      if (!fs.existsSync(src)) continue;
      attempt(`/etc/${f} not written`, () => {
        if (gfs.write(`/etc/${f}`, fs.readFileSync(src), fs.statSync(src).mode & 0o7777)) written.push(`/etc/${f}`);
        this.files.includes(`/etc/${f}`) || this.files.push(`/etc/${f}`);
      });
    }
    attempt('sshd key files not written', () => {
      const staged = this.paths.sshdKeysDir;
      const names = fs.existsSync(staged) ? fs.readdirSync(staged).filter((n) => !n.startsWith('.')) : [];
      gfs.mkdir('/etc/sliceid', 0o755);
      gfs.mkdir(KEYS_DIR, 0o755);
      for (const n of names) {
        const st = fs.lstatSync(path.join(staged, n));
        if (!st.isFile()) continue;
        attempt(`${KEYS_DIR}/${n} not written`, () => {
          if (gfs.write(`${KEYS_DIR}/${n}`, fs.readFileSync(path.join(staged, n)), st.mode & 0o7777, { uid: st.uid, gid: st.gid })) written.push(`${KEYS_DIR}/${n}`);
        });
      }
      const keep = new Set(names);
      for (const n of gfs.list(KEYS_DIR)) if (!keep.has(n) && !n.startsWith('.')) gfs.unlink(`${KEYS_DIR}/${n}`);
      this.files.includes(`${KEYS_DIR}/`) || this.files.push(`${KEYS_DIR}/`);
    });
    return written;
  }

  /** One refresh of this guest: stage, run the node pipeline, push. Never throws. */
  async refresh(trigger: string): Promise<void> {
    // One connection for the whole refresh and what follows it (answers warmed, hooks offered).
    this.cache.hold();
    try {
      await this.refreshHeld(trigger);
    } finally {
      this.cache.release();
    }
  }

  private async refreshHeld(trigger: string): Promise<void> {
    const problems: string[] = [];
    const { root } = this.where();
    let gfs: GuestFs | undefined;
    try {
      if (root) gfs = openGuestRootChecked(root);
      else problems.push('no root and no process in the guest: its files are neither read nor written (the host tmcc cache alone is used)');
    } catch (err) {
      problems.push(`guest root ${root} cannot be opened: ${(err as Error).message}`);
    }
    try {
      this.stage(gfs, problems);
      const facts = { ...this.opts.config.facts, ...(this.spec.hostname ? { hostname: this.spec.hostname } : {}) };
      const config: Config = { ...this.opts.config, facts, geniGet: { ...this.opts.config.geniGet, enabled: false } };
      // The slice users' own authorized_keys: read inside the guest (HOMEDIR taken in its root).
      const open = gfs;
      const read = open ? guestUserFileReader(this.spec.name, () => open.openRoot()) : async (req: { home: string; relative: string }) => ({ kind: 'missing' as const, file: `${req.home}/${req.relative}`, reason: 'the guest has no root known: its homes are not read', home: true as const });
      const ctx = { paths: this.paths, config, configFile: undefined, cache: this.cache, logger: this.logger, shrinkGuard: this.shrinkGuard, userFiles: { home: (h: string) => h, read } };
      const outcome = await refreshOnce(ctx, trigger, false);
      const served = outcome.identity ?? outcome.served;
      this.userKeyFiles = outcome.userKeyFiles.map((f) => `/${path.relative(this.paths.root, f)}`);
      this.confirmInMs = outcome.confirmInMs;
      if (served) {
        const owners = (['creator', 'swapper'] as const).map((f) => served.facts[f]?.value).filter((v): v is string => !!v);
        this.view.setSlice({ slicename: served.identity.slicename, sliceUrn: served.identity.slice.urn, sliceHrn: served.identity.slice.hrn, owners });
      }
      problems.push(...outcome.faults);
      if (gfs) {
        const written = this.push(gfs, problems);
        if (written.length) this.logger.info({ written }, 'guest files updated');
      }
      this.api?.warm();
    } catch (err) {
      problems.push(`refresh failed: ${(err as Error).message}`);
    } finally {
      gfs?.close();
    }
    this.problems = problems;
    this.lastRefresh = new Date().toISOString();
    for (const p of problems) this.logger.warn(p);
    this.opts.onServed?.(this);
  }

  /** Make the guest's listeners (in its namespaces) and serve them. */
  async listen(): Promise<void> {
    if (this.api) return;
    const problems: string[] = [];
    const { netns, root } = this.where();
    const stray: Array<[string, net.Socket]> = [];
    let api: ApiServer | undefined;
    const onStray = (host: string, s: net.Socket): void => (api ? api.serve(s, true) : void stray.push([host, s]));
    if (netns) {
      const addrs = this.opts.listen.map((host) => ({ host, port: this.opts.port }));
      const out = await listenInNetns(netns, addrs, onStray);
      this.handed = out.servers;
      problems.push(...out.problems);
    } else problems.push('no network namespace known: no TCP listener');
    if (root && this.opts.socket) {
      let gfs: GuestFs | undefined;
      try {
        gfs = openGuestRootChecked(root);
        const { server, note } = await listenUnixInGuest(gfs, this.opts.socket);
        this.unix = server;
        if (note) problems.push(`${note}: replaced by sliceid's socket`);
      } catch (err) {
        problems.push(`${this.opts.socket}: ${(err as Error).message}`);
      } finally {
        gfs?.close();
      }
    }
    const adopt = this.handed.map((h) => ({ server: h.server, address: { host: h.host, port: h.port } as ApiAddress }));
    if (this.unix) adopt.push({ server: this.unix, address: { socket: this.opts.socket } });
    // Same turn: what the handed servers held is released as the API attaches to them.
    const early = this.handed.flatMap((h) => h.release());
    if (adopt.length) {
      try {
        api = await startApi({ data: new GuestData(this.view, this.opts), tcp: [], adopt, logger: this.logger });
        this.api = api;
        api.warm();
        for (const s of early) api.serve(s, true);
        for (const [, s] of stray.splice(0)) api.serve(s, true);
      } catch (err) {
        problems.push(`API not served: ${(err as Error).message}`);
      }
    }
    for (const s of [...early, ...stray.map(([, s]) => s)]) if (!api) s.destroy();
    this.listenProblems = problems;
    for (const p of problems) this.logger.warn(p);
    this.logger.info({ endpoints: this.status().endpoints }, 'guest served');
    this.opts.onServed?.(this);
  }

  /** Build the memoized answers again (another guest's slice changed, for all_slices). */
  warm(): void {
    this.api?.warm();
  }

  /** Close the listeners (the guest went away or the daemon stops); the cached data stays. */
  async close(present = false): Promise<void> {
    this.present = present;
    const api = this.api;
    this.api = undefined;
    this.handed = [];
    this.unix = undefined;
    await api?.close();
  }

  dispose(): void {
    this.cache.close();
  }
}
