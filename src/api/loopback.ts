// What counts as loopback, for the listen addresses (config and flags) and for connecting peers.
import net from 'node:net';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (::ffff:127.x.y.z). */
export function isLoopbackAddress(address: string): boolean {
  let a = address.toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (net.isIPv4(a)) return a.startsWith('127.');
  if (a === '::1') return true;
  if (!net.isIPv6(a)) return false;
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) return a.slice(7).startsWith('127.');
  // Normalise "0:0:0:0:0:0:0:1", "::0:1" ... through the address parser.
  const list = new net.BlockList();
  list.addAddress('::1', 'ipv6');
  return list.check(a, 'ipv6');
}

/** True for "localhost" and loopback address literals. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}
