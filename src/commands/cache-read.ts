// Read-side access to the daemon's cache for the query commands (keys, authorized-keys, status).
import fs from 'node:fs';
import type { NodePaths } from '../paths.js';
import { openKeyCache } from '../store/cache.js';
import type { KeyCache } from '../store/types.js';
import { META_IDENTITY, META_IDENTITY_ERROR } from '../daemon/refresh.js';
import type { IdentityResult } from '../identity/index.js';

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

/** What GetSSHKeys answers: slice name -> keys joined by "\n"; empty when no slice or no keys. */
export function getSshKeysAnswer(cache: KeyCache): Record<string, string> {
  const slicename = cachedIdentity(cache).identity?.identity.slicename;
  const keys = cache.sliceKeys();
  return slicename && keys.length ? { [slicename]: keys.join('\n') } : {};
}
