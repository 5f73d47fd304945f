// Every node path sliceid touches, derived from one root prefix ("/" on a real node,
// a temp dir in tests). Modules receive a NodePaths and never build absolute paths themselves.
import path from 'node:path';

export interface NodePaths {
  /** The root prefix every other path lives under. */
  readonly root: string;
  readonly hostnameFile: string;
  readonly slicename: string;
  readonly sliceGid: string;
  readonly nodeGid: string;
  /** /var/emulab/boot */
  readonly bootDir: string;
  /** Candidate geni-get executables, first existing one wins. */
  readonly geniGet: readonly string[];
  /** /var/lib/sliceid (0700): keys, issued certificates, UUIDs, the SQLite cache. */
  readonly stateDir: string;
  readonly database: string;
  readonly pidFile: string;
  /** The running daemon's faults (JSON), beside the pidfile, for `status`. */
  readonly faultsFile: string;
  /** The NodeManager Unix socket. */
  readonly socket: string;
  /** Default operator config files, the first existing one is read. */
  readonly configCandidates: readonly string[];
  /** One file per slice user with that user's keys, read by sshd itself (AuthorizedKeysFile). */
  readonly sshdKeysDir: string;
  /** The slice hooks (run-parts style), run once per slice. */
  readonly hooksDir: string;
  /** What the hooks did, per slice and hook (JSON in the state directory). */
  readonly hookRecords: string;
  /** The node the state directory was made for (JSON in the state directory). */
  readonly nodeRecord: string;
  /** systemd's machine id, one of the marks of the node the state was made for. */
  readonly machineId: string;
  /** Rebase an absolute node path (e.g. a HOMEDIR from tmcc accounts) under the root. */
  under(absolute: string): string;
  /** The tmcc cache directory: tmcc/ on a physical node, tmcc.<vnodeid>/ on a virtual one. */
  tmccDir(vnodeId?: string): string;
}

export function nodePaths(root = '/'): NodePaths {
  const r = path.resolve(root);
  const under = (absolute: string): string => path.join(r, path.resolve('/', absolute));
  const bootDir = under('/var/emulab/boot');
  return {
    root: r,
    hostnameFile: under('/etc/hostname'),
    slicename: under('/etc/slicename'),
    sliceGid: under('/etc/slice.gid'),
    nodeGid: under('/etc/node.gid'),
    bootDir,
    geniGet: [under('/usr/bin/geni-get'), under('/usr/local/bin/geni-get')],
    stateDir: under('/var/lib/sliceid'),
    database: under('/var/lib/sliceid/cache.db'),
    pidFile: under('/var/run/sliceid.pid'),
    faultsFile: under('/var/run/sliceid.faults'),
    socket: under('/tmp/nodemanager.api'),
    configCandidates: [under('/etc/sliceid/sliceid.toml'), under('/etc/sliceid/sliceid.json')],
    sshdKeysDir: under('/etc/sliceid/authorized_keys'),
    hooksDir: under('/etc/sliceid/slice.d'),
    hookRecords: under('/var/lib/sliceid/hooks.json'),
    nodeRecord: under('/var/lib/sliceid/node.json'),
    machineId: under('/etc/machine-id'),
    under,
    tmccDir: (vnodeId?: string) => path.join(bootDir, vnodeId ? `tmcc.${vnodeId}` : 'tmcc'),
  };
}
