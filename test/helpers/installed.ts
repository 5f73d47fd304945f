// An installed sliceid (a package unpacked into a scratch root) started as `sliceid run`: the RPM
// tests and the aarch64 (qemu-user) boot tests wait for its `ready` log line the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface InstalledDaemon {
  proc: ChildProcess;
  /** The `ready` log line (port, socket, ...). */
  ready: Record<string, unknown>;
  exited: Promise<number | null>;
}

/** Start `bin run --root r --port 0` and resolve once it logs `ready` (reject if it exits first). */
export async function startInstalledRun(bin: string, r: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<InstalledDaemon> {
  const proc = spawn(bin, ['run', '--root', r, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  process.once('exit', () => proc.kill('SIGKILL'));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${timeoutMs / 1000} s; stderr: ${stderr}`)), timeoutMs);
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry['msg'] === 'ready') {
          clearTimeout(timer);
          resolve(entry);
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`sliceid run exited ${code} before ready; stderr: ${stderr}`)));
  });
  return { proc, ready, exited };
}
