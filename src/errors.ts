// One error type for input sliceid refuses: it always says where the bad value came from
// (file and line, or command), what the value was, and which rule it broke.
export interface Where {
  /** A file path, or a command such as "geni-get slice_urn", or "config". */
  readonly source: string;
  /** 1-based line number, when the source is a file. */
  readonly line?: number;
}

export function formatWhere(where: Where): string {
  return where.line === undefined ? where.source : `${where.source}:${where.line}`;
}

export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    readonly where: Where,
    readonly value: string,
    readonly rule: string,
    readonly hint?: string,
  ) {
    super(
      `${formatWhere(where)}: ${JSON.stringify(value)} ${rule}` + (hint ? `. ${hint}` : ''),
    );
  }
}
