// The three files Raven/Stork read: /etc/slicename, /etc/slice.gid, /etc/node.gid (0644, atomic,
// unchanged content not rewritten). The GIDs go first so that a reader that sees a slice name also
// finds its GIDs.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import type { NodePaths } from '../paths.js';

export interface IdentityFiles {
  /** PlanetLab-style slice name; written without a trailing newline. */
  readonly slicename: string;
  /** PEM chain: slice GID, then its issuer(s). */
  readonly sliceGid: string;
  /** PEM chain: node GID, then its issuer(s). */
  readonly nodeGid: string;
}

/** Write the identity files; returns the paths that were actually (re)written. */
export function writeIdentityFiles(paths: NodePaths, files: IdentityFiles): string[] {
  const targets: Array<[string, string]> = [
    [paths.sliceGid, files.sliceGid],
    [paths.nodeGid, files.nodeGid],
    [paths.slicename, files.slicename.replace(/\s+$/, '')],
  ];
  const written: string[] = [];
  for (const [file, data] of targets) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    if (writeFileAtomic(file, data, 0o644)) written.push(file);
  }
  return written;
}
