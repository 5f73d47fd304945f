// All facts about this node, merged with precedence config > geni-get > Emulab boot files > host name.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { NodePaths } from '../paths.js';
import { configFacts } from './config-facts.js';
import { emulabFacts } from './emulab.js';
import { mergeFacts, type Facts } from './facts.js';
import { geniGet } from './geniget.js';
import { hostnameFacts } from './hostname.js';

/** `geni-get slice_urn` and `geni-get client_id`, run concurrently; absent or failing means no fact. */
export async function geniGetFacts(paths: NodePaths, opts: { timeoutMs: number; logger?: Logger }): Promise<Facts> {
  const [sliceUrn, clientId] = await Promise.all([geniGet(paths, 'slice_urn', opts), geniGet(paths, 'client_id', opts)]);
  const facts: Facts = {};
  // geni-get prints one value; anything else (several lines) is refused later by the URN rules.
  if (sliceUrn) facts.sliceUrn = { value: sliceUrn.output, where: sliceUrn.where };
  if (clientId) facts.clientId = { value: clientId.output, where: clientId.where };
  return facts;
}

export async function gatherFacts(
  paths: NodePaths,
  config: Config,
  opts: { geniGet: boolean; logger?: Logger; osHostname?: () => string },
): Promise<Facts> {
  const fromGeniGet =
    opts.geniGet && config.geniGet.enabled
      ? await geniGetFacts(paths, { timeoutMs: config.geniGet.timeoutMs, ...(opts.logger ? { logger: opts.logger } : {}) })
      : {};
  return mergeFacts(
    configFacts(config),
    fromGeniGet,
    emulabFacts(paths),
    hostnameFacts(paths, opts.osHostname ? { osHostname: opts.osHostname } : {}),
  );
}
