// What a user names reaches the operator's terminal escaped (status, keys, hooks, logs).
import test from 'ava';
import { operatorLines, operatorText } from '../src/operator-text.js';
import { formatStatus, type StatusReport } from '../src/commands/status.js';

test('control characters, DEL, C1 and bidi controls are shown as escapes; printable text is unchanged', (t) => {
  t.is(operatorText('plain /users/ann/.ssh/authorized_keys é ü 日本'), 'plain /users/ann/.ssh/authorized_keys é ü 日本');
  t.is(operatorText('a\x1b[2Jb'), 'a\\e[2Jb');
  t.is(operatorText('x\nproblems    none'), 'x\\nproblems    none');
  t.is(operatorText('\r\t\x00\x7f\x9b'), '\\r\\t\\x00\\x7f\\x9b');
  t.is(operatorText('abc\u202edef'), 'abc\\u202edef');
  t.is(operatorLines('k1 \x1b[8m\nk2'), 'k1 \\e[8m\nk2', 'lines kept, each escaped');
  // Stateless across calls (a global regex keeps lastIndex).
  for (let i = 0; i < 3; i++) t.is(operatorText('\x1b'), '\\e');
});

test('status: a trigger naming a file with ESC[2J, a newline and ESC[8m cannot clear, forge or hide lines', (t) => {
  const evil = 'add users/eve/.ssh/authorized_keys/\x1b[2J\nproblems    none\x1b[8m';
  const report = {
    daemon: { running: true, pid: 1 },
    api: { answers: true, address: '127.0.0.1:812' },
    facts: {},
    files: [],
    users: [],
    keys: 0,
    sources: [],
    sshd: { uses: 'files', detail: 'ok' },
    lastRefresh: { at: Date.now(), trigger: `files: ${evil}`, durationMs: 3, summary: 'no change' },
    problems: ['a real problem'],
  } as unknown as StatusReport;
  const out = formatStatus(report);
  t.false(/[\x00-\x09\x0b-\x1f\x7f]/.test(out), JSON.stringify(out));
  t.false(out.split('\n').some((l) => l.startsWith('problems    none')), out);
  t.true(out.includes('\\e[2J\\nproblems    none\\e[8m'));
});
