// What the testbed sources tell us. Every fact remembers where it came from, so a refused value
// can be reported with its file and line, and `sliceid status` can show the origin of each fact.
import type { Where } from '../errors.js';

export const FACT_NAMES = [
  'hostname', // full host name, e.g. node0.myexp.myproj.emulab.net
  'nickname', // <vname>.<eid>.<pid>
  'nodeid', // pc123 / pcvm123-1
  'nodeuuid',
  'domain', // testbed domain, e.g. emulab.net
  'creator',
  'swapper',
  'vmname',
  'sliceUrn', // from geni-get slice_urn or config
  'clientId', // from geni-get client_id or config
  'project', // config only: override the project (slice sub-authority)
  'experiment', // config only: override the experiment (slice name)
  'nodeUrn', // config only
] as const;

export type FactName = (typeof FACT_NAMES)[number];

export interface Fact {
  readonly value: string;
  /** Where the value came from: file and line, command, or config file. */
  readonly where: Where;
}

export type Facts = Partial<Record<FactName, Fact>>;

/** Merge fact sets; earlier arguments win (pass them in precedence order). */
export function mergeFacts(...sets: Facts[]): Facts {
  const out: Partial<Record<FactName, Fact>> = {};
  for (const set of sets) {
    for (const name of FACT_NAMES) {
      const fact = set[name];
      if (fact && out[name] === undefined) out[name] = fact;
    }
  }
  return out;
}
