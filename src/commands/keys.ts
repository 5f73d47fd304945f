// sliceid keys [SLICE] [--all]: print what GetSSHKeys answers, from the cache; --all lists every
// cached key type (what sshd is served), not only those [api] getsshkeys_key_types lets through.
import { UsageError, command, setup } from './common.js';
import fs from 'node:fs';
import { nodePaths } from '../paths.js';
import { loadHostConfig } from '../host/config.js';
import { openExistingCache, getSshKeysAnswer } from './cache-read.js';
import { operatorLines, operatorText } from '../operator-text.js';

const USAGE = 'usage: sliceid keys [SLICE] [--all] [--guest NAME] [--root DIR] [--config FILE] [--json]\n';

export const main = command(USAGE, { all: { type: 'boolean', default: false }, guest: { type: 'string' } }, true, ({ values, positionals }) => {
  if (positionals.length > 1) throw new UsageError(`keys takes at most one slice name, got ${positionals.length}`);
  // --guest NAME: a shared host's guest, from its cache kept by the host daemon (src/host/guest.ts),
  // the host's config (with its [host] and [[guest]] sections) read as the host daemon reads it.
  if (values.guest !== undefined && !/^[-\w.]{1,64}$/.test(values.guest)) throw new UsageError(`--guest ${values.guest}: not a guest name`);
  const hostPaths = nodePaths(values.root ?? '/');
  const { paths, config } =
    values.guest === undefined
      ? setup(values)
      : { paths: nodePaths(hostPaths.under(`/var/lib/sliceid/guests/${values.guest}/root`)), config: loadHostConfig(hostPaths, values.config).node };
  if (values.guest !== undefined && !fs.existsSync(paths.database)) throw new UsageError(`no guest named ${values.guest} has been served on this host`);
  const cache = openExistingCache(paths);
  let answer: Record<string, string> = {};
  if (cache) {
    try {
      answer = getSshKeysAnswer(cache, values.all ? 'all' : config.api.getsshkeysKeyTypes);
    } finally {
      cache.close();
    }
  }
  const wanted = positionals[0];
  if (wanted !== undefined) answer = wanted in answer ? { [wanted]: answer[wanted] ?? '' } : {};
  if (values.json) {
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  } else {
    // Key comments are the users' words: each line escaped (--json is JSON-escaped already).
    for (const [slice, keys] of Object.entries(answer)) process.stdout.write(`# ${operatorText(slice)}\n${operatorLines(keys)}${keys ? '\n' : ''}`);
  }
  return wanted !== undefined && Object.keys(answer).length === 0 ? 1 : 0;
});
