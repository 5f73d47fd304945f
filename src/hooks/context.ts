// The context a hook gets, from the identity served and the API's addresses.
import type { ApiAddress } from '../api/server.js';
import type { Identity } from '../identity/types.js';
import type { HookContext } from './runner.js';

/** The context hooks get, from the identity written and the API's addresses. */
export function hookContext(identity: Identity, addresses: readonly ApiAddress[]): HookContext {
  const tcp = addresses.find((a): a is { host: string; port: number } => 'port' in a);
  const socket = addresses.find((a): a is { socket: string } => 'socket' in a);
  const host = tcp && (tcp.host.includes(':') ? `[${tcp.host}]` : tcp.host);
  return {
    slicename: identity.slicename,
    sliceUrn: identity.slice.urn,
    sliceHrn: identity.slice.hrn,
    nodeUrn: identity.node.urn,
    apiUrl: tcp ? `http://${host}:${tcp.port}/` : '',
    apiSocket: socket?.socket ?? '',
  };
}
