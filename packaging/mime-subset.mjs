// The MIME types sliceid's HTTP server can be asked to name, picked from mime-db (the entries
// are mime-db's own). Koa looks a response's type up by a short name or a full type: 'text',
// 'html', 'json' and 'bin' when a body is set without a Content-Type, 'text/plain' and
// 'text/html' in its error and redirect paths; sliceid itself sets text/xml and text/plain
// explicitly. The bundle (packaging/bundle.mjs) gives koa's mime-types these entries instead of
// mime-db's 2,000: the same answers for every one of those names (test/integration/bundle.test.ts),
// ~1 MB less resident at start.
import { createRequire } from 'node:module';

export const SERVED_TYPES = ['text/plain', 'text/html', 'text/xml', 'application/json', 'application/octet-stream'];
/** The names koa's and sliceid's code look up (short names and full types). */
export const LOOKED_UP = ['text', 'html', 'json', 'bin', ...SERVED_TYPES, 'text/plain; charset=utf-8', 'text/html; charset=utf-8'];

/** mime-db's entries for SERVED_TYPES; `mimeDb` is the full database (koa's copy by default). */
export function mimeSubset(mimeDb) {
  const out = {};
  for (const type of SERVED_TYPES) {
    if (!mimeDb[type]) throw new Error(`mime-db has no ${type}`);
    out[type] = mimeDb[type];
  }
  return out;
}
