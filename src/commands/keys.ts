// sliceid keys [SLICE]: print what GetSSHKeys answers, from the cache.
import { UsageError, command } from './common.js';
import { nodePaths } from '../paths.js';
import { openExistingCache, getSshKeysAnswer } from './cache-read.js';

const USAGE = 'usage: sliceid keys [SLICE] [--root DIR] [--json]\n';

export const main = command(USAGE, {}, true, ({ values, positionals }) => {
  if (positionals.length > 1) throw new UsageError(`keys takes at most one slice name, got ${positionals.length}`);
  const cache = openExistingCache(nodePaths(values.root));
  let answer: Record<string, string> = {};
  if (cache) {
    try {
      answer = getSshKeysAnswer(cache);
    } finally {
      cache.close();
    }
  }
  const wanted = positionals[0];
  if (wanted !== undefined) answer = wanted in answer ? { [wanted]: answer[wanted] ?? '' } : {};
  if (values.json) {
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  } else {
    for (const [slice, keys] of Object.entries(answer)) process.stdout.write(`# ${slice}\n${keys}\n`);
  }
  return wanted !== undefined && Object.keys(answer).length === 0 ? 1 : 0;
});
