// sliceid run --host: the host daemon until SIGTERM/SIGINT.
import { nodePaths } from '../paths.js';
import { createLogger, type LogFormat } from '../log.js';
import { loadHostConfig } from './config.js';
import { startHostDaemon } from './daemon.js';

export async function runHost(values: { root?: string | undefined; config?: string | undefined }, logFormat?: LogFormat): Promise<number> {
  const paths = nodePaths(values.root ?? '/');
  const { level, format } = loadHostConfig(paths, values.config).node.log;
  const logger = createLogger({ level, format: logFormat ?? format });
  const daemon = await startHostDaemon({ paths, configFile: values.config, logger, signals: true, ...(logFormat ? { logFormat } : {}) });
  await daemon.stopped;
  return 0;
}
