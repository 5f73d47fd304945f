// The host name: `<root>/etc/hostname` when a root prefix is given (tests, image builds), else the
// kernel's host name. On a testbed node it is `<vname>.<eid>.<pid>.<domain>`.
import os from 'node:os';
import { readFirstLine } from './emulab.js';
import type { Facts } from './facts.js';
import type { NodePaths } from '../paths.js';

export function hostnameFacts(paths: NodePaths, opts: { osHostname?: () => string } = {}): Facts {
  if (paths.root !== '/') {
    const line = readFirstLine(paths.hostnameFile);
    return line ? { hostname: { value: line, where: { source: paths.hostnameFile, line: 1 } } } : {};
  }
  const name = (opts.osHostname ?? os.hostname)().trim();
  return name ? { hostname: { value: name, where: { source: 'host name (gethostname)' } } } : {};
}
