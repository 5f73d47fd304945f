// sliceid refresh: ask the running daemon for a config reload and a full refresh (SIGHUP),
// including geni-get. Only the process that holds this root's instance lock is signalled.
import { nodePaths } from '../paths.js';
import { command, runningDaemon } from './common.js';

const USAGE = 'usage: sliceid refresh [--root DIR]\n';

export const main = command(USAGE, {}, false, ({ values }) => {
  const paths = nodePaths(values.root);
  const daemon = runningDaemon(paths);
  if (!('pid' in daemon)) {
    process.stderr.write(`sliceid: ${daemon.why}; nothing signalled${daemon.running ? '' : '; start it with "sliceid run"'}\n`);
    return 1;
  }
  process.kill(daemon.pid, 'SIGHUP');
  process.stdout.write(`asked sliceid (pid ${daemon.pid}) to reload its config and refresh\n`);
  return 0;
});
