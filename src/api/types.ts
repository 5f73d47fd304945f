// What the NodeManager API needs from the rest of sliceid: a read-only view of the cache.
export interface SliverRecord {
  readonly name: string;
  readonly keys: string;
  readonly type: string;
  readonly timestamp: number;
  readonly attributes: Readonly<Record<string, string>>;
  readonly [extra: string]: string | number | boolean | Readonly<Record<string, string>> | readonly string[];
}

export interface NodeManagerData {
  /** Slice name, undefined when the node is on no slice. */
  slicename(): string | undefined;
  /** Key texts of the slice users that GetSSHKeys lists, ordered and unique. */
  sliceKeys(): readonly string[];
  /** The slice's unix uid, when known. */
  sliceUid(): number | undefined;
  /** The caller's sliver record; undefined when there is no slice. */
  record(): SliverRecord | undefined;
  /** Changes whenever any answer above may change (memoization key). */
  version(): number;
  /**
   * Other slices GetSSHKeys and GetXIDs list besides the caller's own (a shared host's guests with
   * `[host] all_slices = true`, src/host); absent on a node.
   */
  others?(): ReadonlyArray<{ readonly name: string; readonly keys: readonly string[]; readonly uid: number | undefined }>;
}
