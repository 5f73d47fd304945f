// XML-RPC values as JavaScript sees them, and the two documents the protocol exchanges.
//
//   <int>/<i4>/<i8>/<double>  -> number        <boolean>          -> boolean
//   <string>, untyped <value>  -> string        <dateTime.iso8601> -> Date (UTC, whole seconds)
//   <base64>                   -> Uint8Array    <array>            -> XmlRpcValue[]
//   <struct>                   -> XmlRpcStruct  <nil/> (input only) -> null
export type XmlRpcValue = null | boolean | number | string | Date | Uint8Array | XmlRpcValue[] | XmlRpcStruct;

export interface XmlRpcStruct {
  [member: string]: XmlRpcValue;
}

export interface MethodCall {
  readonly methodName: string;
  readonly params: XmlRpcValue[];
}

export interface FaultValue {
  readonly faultCode: number;
  readonly faultString: string;
}

export type MethodResponse = { readonly params: XmlRpcValue[] } | { readonly fault: FaultValue };

/** Bounds on what the decoder accepts; every request is parsed within them. */
export interface DecodeLimits {
  /** Deepest element nesting (methodCall is depth 1). */
  readonly maxDepth: number;
  /** Elements in one document. */
  readonly maxElements: number;
  /** Characters in one text value (string, base64, member name ...). */
  readonly maxStringLength: number;
}

export const defaultDecodeLimits: DecodeLimits = {
  maxDepth: 64,
  maxElements: 100_000,
  maxStringLength: 1024 * 1024,
};

/** Why a document was refused: not well-formed XML, forbidden XML, over a limit, or not XML-RPC. */
export type DecodeErrorKind = 'xml' | 'forbidden' | 'limit' | 'structure';

/** The only error the decoder throws. */
export class XmlRpcDecodeError extends Error {
  override readonly name = 'XmlRpcDecodeError';
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** A value that has no XML-RPC form (null, undefined, NaN, a function, a cycle ...). */
export class XmlRpcEncodeError extends Error {
  override readonly name = 'XmlRpcEncodeError';
}
