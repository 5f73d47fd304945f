// npm run bench -- --only sshd: what sshd pays for the slice users' keys (issue 12).
//
// 1. `sliceid authorized-keys USER` as sshd's AuthorizedKeysCommand runs it, in a copy of the
//    installed layout, against `node -e 0`: the command the README recommends
//    (/usr/lib/sliceid/libexec/authorized-keys, made by packaging/authorized-keys-command.sh, which
//    starts the runtime itself) and, for comparison, `/usr/bin/sliceid authorized-keys`
//    (packaging/sliceid.sh, a shell script). CPU time (utime+stime of the waited child, from this
//    process's cutime/cstime) and wall time per call, interleaved so that a slow spell of the
//    machine hits every command alike.
// 2. A key login through a real sshd that reads the key file (AuthorizedKeysFile) against one
//    that runs the command (AuthorizedKeysCommand): wall time per login (ssh client to exit) and
//    the sshd's CPU per login (its cutime/cstime: the session processes and the command).
// Needs root (sshd, login as root) and OpenSSH; the work directory must be root-owned all the way
// up (sshd's checks of the command and of the key file).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { projectDir, median, round, startChild, stopChild, tcpConnect, type Child } from './lib.js';
import { nodePaths } from '../src/paths.js';
import { writeSshdKeys, forgetSshdKeys } from '../src/writers/sshd-keys.js';
import { freePort, safeParent } from '../test/helpers/sshd.js';

export interface SshdFigures {
  calls: number;
  node_cpu_ms: number | null;
  /** /usr/lib/sliceid/libexec/authorized-keys (the recommended AuthorizedKeysCommand). */
  command_cpu_ms: number | null;
  cpu_ratio: number | null;
  node_wall_ms: number | null;
  command_wall_ms: number | null;
  wall_ratio: number | null;
  /** `/usr/bin/sliceid authorized-keys` (the shell wrapper execs the runtime), for comparison. */
  wrapper_cpu_ms: number | null;
  wrapper_cpu_ratio: number | null;
  wrapper_wall_ms: number | null;
  wrapper_wall_ratio: number | null;
  /** The module itself (`node authorized-keys.cjs`, no shell wrapper), for comparison. */
  direct_cpu_ms: number | null;
  direct_wall_ms: number | null;
  /** The same command through bin/sliceid.js (an ES module entry), for comparison. */
  bin_js_cpu_ms: number | null;
  bin_js_wall_ms: number | null;
  logins: number;
  login_file_ms: number | null;
  login_command_ms: number | null;
  login_wall_ratio: number | null;
  sshd_cpu_ms_per_login_file: number | null;
  sshd_cpu_ms_per_login_command: number | null;
  sshd_cpu_ratio: number | null;
}

/** CPU ms of this process's waited-for children so far (cutime + cstime). */
function childrenCpuMs(pid: number | 'self' = 'self'): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(execTicks);
  return ((Number(f[13]) + Number(f[14])) * 1000) / ticks;
}
const execTicks = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The installed layout: <work>/usr/bin/sliceid (packaging/sliceid.sh) and <work>/usr/lib/sliceid
 * with libexec/authorized-keys (#! this node). Returns the wrapper and the command. */
function installedLayout(work: string, runtime: string): { wrapper: string; command: string } {
  const lib = path.join(work, 'usr', 'lib', 'sliceid');
  fs.mkdirSync(path.join(lib, 'runtime', 'bin'), { recursive: true });
  for (const name of ['bin', 'dist', 'node_modules', 'package.json']) fs.symlinkSync(path.join(projectDir, name), path.join(lib, name));
  // sshd runs the command with an empty environment: the wrapper finds this node as the bundled runtime.
  fs.symlinkSync(runtime, path.join(lib, 'runtime', 'bin', 'node'));
  const wrapper = path.join(work, 'usr', 'bin', 'sliceid');
  fs.mkdirSync(path.dirname(wrapper), { recursive: true });
  fs.copyFileSync(path.join(projectDir, 'packaging', 'sliceid.sh'), wrapper);
  fs.chmodSync(wrapper, 0o755);
  execFileSync('sh', [path.join(projectDir, 'packaging', 'authorized-keys-command.sh'), runtime, path.join(lib, 'libexec')]);
  return { wrapper, command: path.join(lib, 'libexec', 'authorized-keys') };
}

interface Timed {
  cpu: number;
  wall: number[];
}

/** Run each command `n` times, interleaved; CPU (mean) and wall (all samples) per command. */
function interleave(cmds: Array<[string, string[]]>, n: number): Timed[] {
  const out = cmds.map((): Timed => ({ cpu: 0, wall: [] }));
  for (let i = 0; i < n; i++) {
    cmds.forEach(([cmd, args], k) => {
      const c0 = childrenCpuMs();
      const t0 = performance.now();
      const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
      out[k]!.wall.push(performance.now() - t0);
      out[k]!.cpu += childrenCpuMs() - c0;
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.toString().slice(0, 300)}`);
    });
  }
  for (const t of out) t.cpu /= n;
  return out;
}

async function startSshd(work: string, name: string, lines: string[]): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const config = path.join(work, `sshd_config.${name}`);
  fs.writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(work, 'host_key')}`, `PidFile ${path.join(work, `sshd.${name}.pid`)}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes yes',
    'UseDNS no', ...lines, '',
  ].join('\n'));
  const child = startChild(`sshd(${name})`, '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  for (let i = 0; ; i++) {
    try {
      await tcpConnect(port, 1000);
      return { child, port };
    } catch (err) {
      if (i >= 100 || child.exitCode !== undefined) {
        await stopChild(child, 1000);
        throw new Error(`sshd(${name}) does not listen: ${(err as Error).message}; ${child.stderr.slice(-300)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function login(key: string, port: number): number {
  const t0 = performance.now();
  const r = spawnSync('ssh', [
    '-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'true',
  ], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  if (r.status !== 0) throw new Error(`ssh login on port ${port} failed (${r.status}): ${r.stderr.toString().slice(0, 300)}`);
  return performance.now() - t0;
}

/** `runtime`: the node the commands run on (npm run bench: the one the packages carry). */
export async function benchSshd(opts: { quick: boolean; note: (s: string) => void; runtime?: string }): Promise<SshdFigures> {
  const runtime = opts.runtime ?? process.execPath;
  const calls = opts.quick ? 30 : 60;
  const logins = opts.quick ? 10 : 30;
  if (process.getuid?.() !== 0) throw new Error('needs root (sshd, logins as root)');
  if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('no /usr/sbin/sshd (install openssh-server)');
  const work = fs.mkdtempSync(path.join(safeParent(), 'sliceid-bench-sshd-'));
  fs.chmodSync(work, 0o755);
  const children: Child[] = [];
  try {
    const { wrapper, command: commandFile } = installedLayout(work, runtime);
    const root = path.join(work, 'node');
    fs.mkdirSync(root, { mode: 0o755 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench@sliceid', '-f', path.join(work, 'user')]);
    const pub = fs.readFileSync(path.join(work, 'user.pub'), 'utf8').trim();
    // root's file holds the login key and, like a slice user's, a few more keys of other types.
    const paths = nodePaths(root);
    forgetSshdKeys(paths);
    const others = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX897pEdvFHAgo3uOhSNWqsw+c0f4U8Fu5ucKX/1zvk ada@laptop'];
    await writeSshdKeys(paths, [{ login: 'root', keys: [...others, pub] }]);

    opts.note(`sshd: the command against node -e 0, ${calls} calls each, interleaved`);
    const [node, command, viaWrapper, direct, binJs] = interleave(
      [
        [runtime, ['-e', '0']],
        [commandFile, ['root', '--root', root]],
        [wrapper, ['authorized-keys', 'root', '--root', root]],
        [runtime, [path.join(projectDir, 'dist', 'src', 'commands', 'authorized-keys.cjs'), 'root', '--root', root]],
        [runtime, [path.join(projectDir, 'bin', 'sliceid.js'), 'authorized-keys', 'root', '--root', root]],
      ],
      calls,
    );
    const r = (a: number | null, b: number | null): number | null => (a && b ? round(a / b, 3) : null);
    const f: SshdFigures = {
      calls,
      node_cpu_ms: round(node!.cpu, 1),
      command_cpu_ms: round(command!.cpu, 1),
      cpu_ratio: r(command!.cpu, node!.cpu),
      node_wall_ms: round(median(node!.wall), 1),
      command_wall_ms: round(median(command!.wall), 1),
      wall_ratio: r(median(command!.wall), median(node!.wall)),
      wrapper_cpu_ms: round(viaWrapper!.cpu, 1),
      wrapper_cpu_ratio: r(viaWrapper!.cpu, node!.cpu),
      wrapper_wall_ms: round(median(viaWrapper!.wall), 1),
      wrapper_wall_ratio: r(median(viaWrapper!.wall), median(node!.wall)),
      direct_cpu_ms: round(direct!.cpu, 1),
      direct_wall_ms: round(median(direct!.wall), 1),
      bin_js_cpu_ms: round(binJs!.cpu, 1),
      bin_js_wall_ms: round(median(binJs!.wall), 1),
      logins,
      login_file_ms: null,
      login_command_ms: null,
      login_wall_ratio: null,
      sshd_cpu_ms_per_login_file: null,
      sshd_cpu_ms_per_login_command: null,
      sshd_cpu_ratio: null,
    };
    opts.note(`  node -e 0 ${f.node_cpu_ms} ms CPU, ${f.node_wall_ms} ms wall; command ${f.command_cpu_ms} ms CPU (${f.cpu_ratio}x), ${f.command_wall_ms} ms wall (${f.wall_ratio}x)`);

    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const file = await startSshd(work, 'file', [`AuthorizedKeysFile ${paths.sshdKeysDir}/%u`]);
    children.push(file.child);
    const cmd = await startSshd(work, 'command', ['AuthorizedKeysFile none', `AuthorizedKeysCommand ${commandFile} %u --root ${root}`, 'AuthorizedKeysCommandUser root']);
    children.push(cmd.child);
    const key = path.join(work, 'user');
    login(key, file.port);
    login(key, cmd.port);
    opts.note(`sshd: ${logins} key logins through each sshd, interleaved`);
    const wall = { file: [] as number[], command: [] as number[] };
    const cpu = { file: 0, command: 0 };
    for (let i = 0; i < logins; i++) {
      for (const [name, s] of [['file', file], ['command', cmd]] as const) {
        const c0 = childrenCpuMs(s.child.pid);
        wall[name].push(login(key, s.port));
        // The session process may be reaped a moment after the client exits: wait (bounded) for it.
        const settle = Date.now() + 2000;
        let c1 = childrenCpuMs(s.child.pid);
        while (c1 === c0 && Date.now() < settle) {
          await new Promise((res) => setTimeout(res, 5));
          c1 = childrenCpuMs(s.child.pid);
        }
        cpu[name] += c1 - c0;
      }
    }
    f.login_file_ms = round(median(wall.file), 1);
    f.login_command_ms = round(median(wall.command), 1);
    f.login_wall_ratio = r(median(wall.command), median(wall.file));
    f.sshd_cpu_ms_per_login_file = round(cpu.file / logins, 1);
    f.sshd_cpu_ms_per_login_command = round(cpu.command / logins, 1);
    f.sshd_cpu_ratio = r(cpu.command, cpu.file);
    opts.note(`  login: file ${f.login_file_ms} ms, command ${f.login_command_ms} ms (${f.login_wall_ratio}x); sshd CPU per login: file ${f.sshd_cpu_ms_per_login_file} ms, command ${f.sshd_cpu_ms_per_login_command} ms (${f.sshd_cpu_ratio}x)`);
    return f;
  } finally {
    for (const c of children) await stopChild(c, 2000);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The report's lines for this section. */
export function reportSshd(f: SshdFigures | null): string[] {
  if (!f) return [];
  const n = (v: number | null): string => (v === null ? 'n/a' : String(v));
  return [
    `sshd keys (issue 12): /usr/lib/sliceid/libexec/authorized-keys USER vs node -e 0 (${f.calls} calls each)`,
    `  CPU ${n(f.command_cpu_ms)} ms vs ${n(f.node_cpu_ms)} ms = ${n(f.cpu_ratio)}x; wall ${n(f.command_wall_ms)} ms vs ${n(f.node_wall_ms)} ms = ${n(f.wall_ratio)}x `,
    `  /usr/bin/sliceid authorized-keys (shell wrapper) ${n(f.wrapper_cpu_ms)} ms CPU = ${n(f.wrapper_cpu_ratio)}x, ${n(f.wrapper_wall_ms)} ms wall = ${n(f.wrapper_wall_ratio)}x; node authorized-keys.cjs ${n(f.direct_cpu_ms)} ms CPU, ${n(f.direct_wall_ms)} ms wall; via bin/sliceid.js (an ES module entry) ${n(f.bin_js_cpu_ms)} ms CPU, ${n(f.bin_js_wall_ms)} ms wall`,
    `  key login through sshd (median of ${f.logins}): AuthorizedKeysFile ${n(f.login_file_ms)} ms, AuthorizedKeysCommand ${n(f.login_command_ms)} ms = ${n(f.login_wall_ratio)}x; sshd CPU per login ${n(f.sshd_cpu_ms_per_login_file)} vs ${n(f.sshd_cpu_ms_per_login_command)} ms = ${n(f.sshd_cpu_ratio)}x`,
    '',
  ];
}

/** Goals (issue 12): the command costs at most 1.1x `node -e 0`. */
export const SSHD_GOALS: Array<{ goal: string; key: keyof SshdFigures; target: number }> = [
  { goal: 'authorized-keys CPU per call vs node -e 0', key: 'cpu_ratio', target: 1.1 },
  { goal: 'authorized-keys wall per call vs node -e 0', key: 'wall_ratio', target: 1.1 },
];
