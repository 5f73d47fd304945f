// Read-side access to the daemon's cache for the query commands (keys, authorized-keys, status).
import fs from 'node:fs';
import type { NodePaths } from '../paths.js';
import { openKeyCache } from '../store/cache.js';
import type { KeyCache } from '../store/types.js';
import { META_IDENTITY, META_IDENTITY_ERROR } from '../daemon/refresh.js';
import type { IdentityResult } from '../identity/index.js';
import { DEFAULT_KEY_TYPE_SETTING, listKeys, type KeyTypeSetting } from '../api/key-listing.js';

/** The cache when the daemon (or once) has created one, else undefined. Never creates it. */
export function openExistingCache(paths: NodePaths): KeyCache | undefined {
  if (!fs.existsSync(paths.database)) return undefined;
  return openKeyCache(paths.database, { readonly: true });
}

export function cachedIdentity(cache: KeyCache): { identity: IdentityResult | undefined; error: string | undefined } {
  const raw = cache.getMeta(META_IDENTITY);
  const error = cache.getMeta(META_IDENTITY_ERROR) || undefined;
  return { identity: raw ? (JSON.parse(raw) as IdentityResult) : undefined, error };
}

/**
 * What GetSSHKeys answers: slice name -> its listable keys joined by "\n" ("" when none); empty
 * when the node is on no slice. `keyTypes` as the daemon's [api] getsshkeys_key_types.
 */
export function getSshKeysAnswer(cache: KeyCache, keyTypes: KeyTypeSetting = DEFAULT_KEY_TYPE_SETTING): Record<string, string> {
  const slicename = cachedIdentity(cache).identity?.identity.slicename;
  return slicename ? { [slicename]: listKeys(cache.sliceKeys(), keyTypes).listed.join('\n') } : {};
}
