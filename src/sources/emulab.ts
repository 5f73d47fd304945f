// Emulab boot files: /var/emulab/boot/{nickname,nodeid,nodeuuid,mydomain,creator,swapper,vmname},
// one value on the first line of each. A missing file is simply no fact.
import fs from 'node:fs';
import path from 'node:path';
import type { Facts, FactName } from './facts.js';
import type { NodePaths } from '../paths.js';

/** Boot file name -> fact name. */
export const BOOT_FILES: ReadonlyArray<readonly [string, FactName]> = [
  ['nickname', 'nickname'],
  ['nodeid', 'nodeid'],
  ['nodeuuid', 'nodeuuid'],
  ['mydomain', 'domain'],
  ['creator', 'creator'],
  ['swapper', 'swapper'],
  ['vmname', 'vmname'],
];

export function emulabFacts(paths: NodePaths): Facts {
  const facts: Facts = {};
  for (const [file, fact] of BOOT_FILES) {
    const full = path.join(paths.bootDir, file);
    const value = readFirstLine(full);
    if (value !== undefined) facts[fact] = { value, where: { source: full, line: 1 } };
  }
  return facts;
}

/**
 * The first line of `file`, trimmed; undefined when the file is missing (or a path component is
 * not a directory) or the line is empty. Other errors (permissions, I/O) propagate.
 */
export function readFirstLine(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  const line = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  return line === '' ? undefined : line;
}
