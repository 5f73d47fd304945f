// sliceid run --host: the host daemon until SIGTERM/SIGINT.
import { nodePaths } from '../paths.js';
import { createLogger } from '../log.js';
import { loadHostConfig } from './config.js';
import { startHostDaemon } from './daemon.js';

export async function runHost(values: { root?: string | undefined; config?: string | undefined }): Promise<number> {
  const paths = nodePaths(values.root ?? '/');
  const level = loadHostConfig(paths, values.config).node.log.level;
  const logger = createLogger({ level });
  const daemon = await startHostDaemon({ paths, configFile: values.config, logger, signals: true });
  await daemon.stopped;
  return 0;
}
