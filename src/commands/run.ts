// sliceid run: the daemon.
import { createLogger, resolveLogFormat } from '../log.js';
import { startDaemon } from '../daemon/lifecycle.js';
import { command, setup, UsageError } from './common.js';
import { loadConfig, LOG_FORMATS, type Config, type LogFormat } from '../config.js';

/** --log-format's value, checked. */
export function logFormatOption(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--log-format ${value}: must be one of ${LOG_FORMATS.join(', ')}`);
  return value as LogFormat;
}

const USAGE =
  'usage: sliceid run [--root DIR] [--config FILE] [--port N] [--socket PATH|--no-socket] [--listen ADDR]... [--log-format auto|json|journal]\n' +
  '       sliceid run --host [--root DIR] [--config FILE] [--log-format auto|json|journal]   (a shared host: serve every guest)\n';

export const main = command(
  USAGE,
  {
    port: { type: 'string' },
    socket: { type: 'string' },
    'no-socket': { type: 'boolean', default: false },
    listen: { type: 'string', multiple: true },
    'log-format': { type: 'string' },
    host: { type: 'boolean', default: false },
  },
  false,
  async ({ values }) => {
    if (values.host) {
      // A shared host (spec section 8): one daemon for every guest, the host's config read by it.
      const { runHost } = await import('../host/run.js');
      return runHost(values, logFormatOption(values['log-format']));
    }
    const { paths, config, configFile } = setup(values);
    if (values.port !== undefined && (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535)) {
      throw new UsageError(`--port ${values.port}: not a port number (0-65535)`);
    }
    // The command line's listener settings win over the file's, at start and at every reload.
    const withFlags = (c: Config): Config => {
      const api = { ...c.api };
      if (values.port !== undefined) api.port = Number(values.port);
      if (values.listen) api.listen = values.listen;
      if (values['no-socket']) api.socket = '';
      else if (values.socket !== undefined) api.socket = values.socket;
      return { ...c, api };
    };
    const reload = (): { config: Config; file: string | undefined } => {
      const loaded = loadConfig(paths, values.config);
      return { config: withFlags(loaded.config), file: loaded.file };
    };
    const format = logFormatOption(values['log-format']) ?? config.log.format;
    const logger = createLogger({ level: config.log.level, format });
    const daemon = await startDaemon({ paths, config: withFlags(config), configFile, loadConfig: reload, logger, logFormat: resolveLogFormat(format) });
    await daemon.stopped;
    return 0;
  },
);
