// XML-RPC faults: NodeManager's codes and texts (spec section 7, to the byte), plus the
// interoperability codes for requests that are not XML-RPC at all.
import type { FaultValue } from './types.js';

export const FaultCode = {
  /** NodeManager: unknown method. */
  InvalidMethod: 100,
  /** NodeManager: wrong number of arguments. */
  ArgumentCount: 101,
  /** NodeManager: the first argument is not a sliver name. */
  InvalidArgument: 102,
  /** NodeManager: the method failed. */
  CallError: 104,
  /** NodeManager: the caller may not act on that sliver. */
  PermissionDenied: 108,
  /** Not well-formed XML, forbidden XML (DOCTYPE, entities, PIs) or over a parse limit. */
  ParseError: -32700,
  /** Well-formed XML that is not an XML-RPC methodCall. */
  InvalidRequest: -32600,
} as const;

/** A fault a method raises; the dispatcher turns it into a fault response. */
export class XmlRpcFault extends Error implements FaultValue {
  override readonly name = 'XmlRpcFault';
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(faultString);
  }
}

export function invalidMethod(method: string, valid: readonly string[]): XmlRpcFault {
  return new XmlRpcFault(
    FaultCode.InvalidMethod,
    `Invalid API method ${method}.  Valid choices are ${[...valid].sort().join(', ')}`,
  );
}

export function argumentCount(got: number, expecting: number): XmlRpcFault {
  return new XmlRpcFault(FaultCode.ArgumentCount, `Invalid argument count: got ${got}, expecting ${expecting}.`);
}

export function invalidSliverArgument(): XmlRpcFault {
  return new XmlRpcFault(FaultCode.InvalidArgument, 'Invalid argument: the first argument must be a sliver name.');
}

export function callError(message: string): XmlRpcFault {
  return new XmlRpcFault(FaultCode.CallError, `Error in call: ${message}`);
}

export function permissionDenied(caller: string): XmlRpcFault {
  return new XmlRpcFault(FaultCode.PermissionDenied, `${caller}: Permission denied.`);
}
