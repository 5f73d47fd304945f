// sliceid refresh: ask the running daemon for a full refresh (SIGHUP), including geni-get.
import { livePid } from '../fs/pidfile.js';
import { nodePaths } from '../paths.js';
import { command } from './common.js';

const USAGE = 'usage: sliceid refresh [--root DIR]\n';

export const main = command(USAGE, {}, false, ({ values }) => {
  const paths = nodePaths(values.root);
  const pid = livePid(paths.pidFile);
  if (pid === undefined) {
    process.stderr.write(`sliceid: no running daemon (pidfile ${paths.pidFile} missing or stale); start it with "sliceid run"\n`);
    return 1;
  }
  process.kill(pid, 'SIGHUP');
  process.stdout.write(`asked sliceid (pid ${pid}) for a full refresh\n`);
  return 0;
});
