// Readiness for systemd (Type=notify): READY=1 once the daemon has started (the identity files
// written, the API listening). Node has no datagram Unix sockets, so the message is sent by
// systemd's own `systemd-notify --ready --no-block`, started once by the daemon: run as root with
// --no-block, it sends the message with its parent's credentials (the daemon, the unit's main
// process), so systemd attributes it to the unit even after systemd-notify has exited
// (NotifyAccess=all in the unit covers older systemd too). Nothing is sent without NOTIFY_SOCKET
// (SysV init, a shell), and NOTIFY_SOCKET is not passed on to the daemon's other children.
import { execFile } from 'node:child_process';
import type { Logger } from '../log.js';

/** Tell systemd the daemon is ready; resolves when systemd-notify has run (or failed: logged). */
export function notifyReady(logger: Logger, status: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const socket = env['NOTIFY_SOCKET'];
  if (!socket) return Promise.resolve();
  const childEnv = { ...env };
  delete env['NOTIFY_SOCKET'];
  return new Promise((resolve) => {
    execFile('systemd-notify', ['--ready', '--no-block', `--status=${status}`], { env: childEnv, timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) logger.warn({ socket, err: err.message, stderr: String(stderr).slice(0, 500) }, 'could not tell systemd the daemon is ready (systemd-notify)');
      else logger.debug({ socket }, 'told systemd the daemon is ready');
      resolve();
    });
  });
}
