// The NodeManager API's read-only view of the node: identity held by the daemon, keys from the
// cache. Answers are computed from memory; nothing here touches the disk per request.
import type { NodeManagerData, SliverRecord } from '../api/types.js';
import type { KeyCache } from '../store/types.js';
import { DEFAULT_KEY_TYPE_SETTING, listKeys, type KeyTypeSetting } from '../api/key-listing.js';

export interface SliceFacts {
  readonly slicename: string;
  readonly sliceUrn: string;
  readonly sliceHrn: string;
  /** Logins whose uid is the slice's uid, in order of preference (creator, swapper). */
  readonly owners: readonly string[];
}

export class NodeView implements NodeManagerData {
  private slice: SliceFacts | undefined;
  private generation = 0;
  private uidMemo: { version: number; uid: number | undefined } | undefined;
  /** Weakly held, like the cache's own memo (src/store/cache.ts): the API keeps the encoded answer. */
  private listedMemo: WeakRef<{ from: readonly string[]; listed: readonly string[] }> | undefined;

  /** `keyTypes`: which cached keys GetSSHKeys (and GetRecord's `keys`) list ([api] getsshkeys_key_types). */
  constructor(
    private readonly cache: KeyCache,
    private keyTypes: KeyTypeSetting = DEFAULT_KEY_TYPE_SETTING,
  ) {}

  /** A reloaded config's `getsshkeys_key_types`: the answers are built again from the next call. */
  setKeyTypes(keyTypes: KeyTypeSetting): void {
    if (JSON.stringify(keyTypes) === JSON.stringify(this.keyTypes)) return;
    this.keyTypes = keyTypes;
    this.listedMemo = undefined;
    this.generation++;
  }

  setSlice(slice: SliceFacts | undefined): void {
    if (JSON.stringify(slice) === JSON.stringify(this.slice)) return;
    this.slice = slice;
    this.generation++;
    this.uidMemo = undefined;
  }

  slicename(): string | undefined {
    return this.slice?.slicename;
  }

  /** The slice's keys GetSSHKeys lists; computed again only when the cache's key list changes. */
  sliceKeys(): readonly string[] {
    if (!this.slice) return [];
    const all = this.cache.sliceKeys();
    let memo = this.listedMemo?.deref();
    if (memo?.from !== all) {
      memo = { from: all, listed: Object.freeze(listKeys(all, this.keyTypes).listed) };
      this.listedMemo = new WeakRef(memo);
    }
    return memo.listed;
  }

  sliceUid(): number | undefined {
    if (!this.slice) return undefined;
    const version = this.version();
    if (this.uidMemo?.version !== version) {
      const users = this.cache.users();
      let uid: number | undefined;
      for (const login of this.slice.owners) {
        uid = users.find((u) => u.login === login && u.uid !== undefined)?.uid;
        if (uid !== undefined) break;
      }
      this.uidMemo = { version, uid };
    }
    return this.uidMemo.uid;
  }

  record(): SliverRecord | undefined {
    const slice = this.slice;
    if (!slice) return undefined;
    const last = this.cache.lastRefresh();
    return {
      name: slice.slicename,
      keys: this.sliceKeys().join('\n'),
      type: 'sliver.Emulab',
      timestamp: Math.floor((last?.at ?? Date.now()) / 1000),
      attributes: {},
      slice_urn: slice.sliceUrn,
      slice_hrn: slice.sliceHrn,
    };
  }

  version(): number {
    // Both counters only grow, so their sum changes whenever either does.
    return this.cache.version + this.generation;
  }
}
