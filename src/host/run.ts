// sliceid run --host: the host daemon until SIGTERM/SIGINT.
import net from 'node:net';
import { nodePaths } from '../paths.js';
import { createLogger, type LogFormat } from '../log.js';
import { loadHostConfig } from './config.js';
import { startHostDaemon } from './daemon.js';

export async function runHost(values: { root?: string | undefined; config?: string | undefined }, logFormat?: LogFormat): Promise<number> {
  const paths = nodePaths(values.root ?? '/');
  const { level, format } = loadHostConfig(paths, values.config).node.log;
  const logger = createLogger({ level, format: logFormat ?? format });
  const daemon = await startHostDaemon({ paths, configFile: values.config, logger, signals: true, ...(logFormat ? { logFormat } : {}) });
  // Until the first guest's listeners, nothing holds the event loop (the directory watchers are not
  // persistent): a host booted before its guests would exit at once. One timer that never fires
  // in practice (24.8 days) keeps it up; no polling.
  const hold = setInterval(() => {}, 0x7fffffff);
  await daemon.stopped;
  clearInterval(hold);
  // The stop is complete (listeners closed, state file removed, lock released). With 35 or more
  // guests a handle has been seen to stay open after it (bench/README.md): it is named in the log
  // and does not keep a stopped daemon from exiting. The timer itself holds nothing.
  setTimeout(() => {
    logger.warn({ handles: process.getActiveResourcesInfo(), sockets: openSockets() }, 'host daemon stopped but handles stay open: exiting');
    process.exit(0);
  }, 2000).unref();
  return 0;
}

/** The sockets and servers still open in this process: addresses and state (never their data). */
export function openSockets(): string[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.flatMap((h): string[] => {
    if (h instanceof net.Server) return [`server ${JSON.stringify(h.address())}`];
    if (h instanceof net.Socket && (h.remoteAddress || h.localAddress)) return [`socket ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort} ${h.readyState}`];
    return [];
  });
}
