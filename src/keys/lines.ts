// Reading a line-oriented key file (tmcc accounts, authorized_keys) without trusting it: size cap,
// per-line UTF-8 check, NUL detection, and whether the last line was cut (no final newline).
import fs from 'node:fs';

/** Files bigger than this are refused as a whole (30,000 keys take about 5 MiB). */
export const MAX_KEY_FILE = 64 * 1024 * 1024;

export interface Line {
  /** 1-based. */
  readonly number: number;
  /**
   * Decoded text without the line ending (LF or CRLF: a testbed file edited or written elsewhere
   * may end its lines with CRLF, and a trailing CR is part of no value); undefined when the bytes
   * are not valid UTF-8.
   */
  readonly text: string | undefined;
  readonly hasNul: boolean;
}

export interface Lines {
  readonly lines: readonly Line[];
  /** The data does not end with a newline (the last line may have been cut). */
  readonly unterminated: boolean;
  readonly hasNul: boolean;
  readonly invalidUtf8: boolean;
}

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A line's text without the CR of a CRLF ending (only one: any other CR stays and is refused). */
function withoutCr(text: string): string {
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

export function splitLines(data: Buffer): Lines {
  const hasNul = data.includes(0);
  let whole: string | undefined;
  try {
    whole = strict.decode(data);
  } catch {
    whole = undefined;
  }
  const lines: Line[] = [];
  if (whole !== undefined) {
    const parts = whole.split('\n');
    if (parts[parts.length - 1] === '') parts.pop();
    parts.forEach((text, i) => lines.push({ number: i + 1, text: withoutCr(text), hasNul: hasNul && text.includes('\0') }));
  } else {
    // Slow path: find which lines are not UTF-8.
    let start = 0;
    let n = 0;
    while (start < data.length) {
      let end = data.indexOf(0x0a, start);
      if (end < 0) end = data.length;
      const bytes = data.subarray(start, end);
      let text: string | undefined;
      try {
        text = strict.decode(bytes);
      } catch {
        text = undefined;
      }
      lines.push({ number: ++n, text: text === undefined ? undefined : withoutCr(text), hasNul: bytes.includes(0) });
      start = end + 1;
    }
  }
  return { lines, unterminated: data.length > 0 && data[data.length - 1] !== 0x0a, hasNul, invalidUtf8: whole === undefined };
}

export type ReadOutcome =
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'missing'; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string };

/** Read a key file: missing when absent or empty (Emulab is rewriting it), error when unreadable or too big. */
export function readKeyFile(file: string): ReadOutcome {
  let data: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return { kind: 'error', reason: `${file} is not a regular file` };
    if (st.size > MAX_KEY_FILE) return { kind: 'error', reason: `${file} is larger than ${MAX_KEY_FILE} bytes` };
    data = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing', reason: `${file} does not exist` };
    return { kind: 'error', reason: `${file} cannot be read: ${(err as Error).message}` };
  }
  if (data.length === 0) return { kind: 'missing', reason: `${file} is empty` };
  if (data.length > MAX_KEY_FILE) return { kind: 'error', reason: `${file} is larger than ${MAX_KEY_FILE} bytes` };
  return { kind: 'data', data };
}

/**
 * Status of a parsed line file: partial when it has NUL bytes or invalid UTF-8, or its last line
 * is unterminated and did not parse (a write cut short); invalid when not one line was usable.
 * A machine-written file (tmcc's cache) always ends its last line, so there an unterminated last
 * line is a cut write even when what is left of it still parses (`ADDUSER LOGIN=x UID=1` cut
 * before HOMEDIR, say).
 */
export function lineStatus(
  input: Lines,
  lastLineFailed: boolean,
  goodLines: number,
  badLines: number,
  machineWritten = false,
): { status: 'ok' | 'partial' | 'invalid'; reason?: string } {
  if (input.hasNul) return { status: 'partial', reason: 'the file contains NUL bytes (written only in part?)' };
  if (input.invalidUtf8) return { status: 'partial', reason: 'the file is not valid UTF-8 throughout' };
  if (input.unterminated && lastLineFailed) return { status: 'partial', reason: 'the last line is cut short (no newline at the end and it does not parse)' };
  if (input.unterminated && machineWritten) return { status: 'partial', reason: 'the last line is cut short (no newline at the end)' };
  if (goodLines === 0 && badLines > 0) return { status: 'invalid', reason: `none of its ${badLines} lines is usable` };
  return { status: 'ok' };
}
