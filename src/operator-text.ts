// Text shown to the operator (status, keys, hooks, log messages) that may hold what a user chose:
// file names under a home, key comments, refresh triggers. A terminal acts on control characters
// (ESC[2J clears the screen, ESC[8m hides what follows, a newline forges a line, CR overwrites
// one, bidi controls reorder it): each is shown as an escape instead, so what the operator reads
// is what is there. Printable text (UTF-8 letters included) is unchanged.

/** C0 and C1 controls, DEL, line/paragraph separators, bidi embeddings/overrides/isolates, BOM. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]/g;

const escapeOne = (c: string): string => {
  const code = c.charCodeAt(0);
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    case '\x1b':
      return '\\e';
  }
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** One line of operator text: every control character (newlines included) shown as an escape. */
export function operatorText(s: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(s) ? s.replace(UNSAFE, escapeOne) : s;
}

/** Several lines: each line escaped, the newlines between them kept. */
export function operatorLines(s: string): string {
  return s.split('\n').map(operatorText).join('\n');
}
