// The node's identity as derived from facts: what /etc/slicename and the two GIDs say.
import type { Where } from '../errors.js';

export interface Named {
  readonly urn: string;
  readonly hrn: string;
}

export interface Identity {
  /** Testbed domain, e.g. emulab.net (the authority's top level). */
  readonly domain: string;
  readonly authority: Named;
  readonly slice: Named & {
    /** Project (last sub-authority of the slice URN) and slice name. */
    readonly project: string;
    readonly name: string;
  };
  readonly node: Named & { readonly uuid?: string };
  /** PlanetLab-style slice name: SFA's hrn_to_pl_slicename of the slice HRN (names.ts). */
  readonly slicename: string;
  /** Where each derived part came from (for status and messages). */
  readonly origins: Readonly<Record<'domain' | 'slice' | 'node' | 'nodeUuid', Where | undefined>>;
}
