// sliceid authorized-keys USER: the user's keys from the cache, one per line, for sshd's
// AuthorizedKeysCommand. An unknown user (or no cache yet) prints nothing and exits 0.
import { UsageError, command } from './common.js';
import { nodePaths } from '../paths.js';
import { openExistingCache } from './cache-read.js';

const USAGE = 'usage: sliceid authorized-keys USER [--root DIR]\n';

export const main = command(USAGE, {}, true, ({ values, positionals }) => {
  const [user, ...extra] = positionals;
  if (!user || extra.length) throw new UsageError('authorized-keys takes exactly one user name');
  const cache = openExistingCache(nodePaths(values.root));
  if (!cache) return 0;
  try {
    const keys = cache.userKeys(user);
    if (keys.length) process.stdout.write(`${keys.join('\n')}\n`);
  } finally {
    cache.close();
  }
  return 0;
});
