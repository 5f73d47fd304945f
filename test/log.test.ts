import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { journalLine, resolveLogFormat, safeDestination, logStats } from '../src/log.js';
import { tempDir } from './helpers/fixtures.js';

test('journal format: sd-daemon priority prefix, the message, then key=value; one line even with newlines', (t) => {
  t.is(journalLine('{"level":30,"time":1,"pid":9,"name":"sliceid","port":812,"slicename":"p_s","msg":"ready"}'), '<6>ready port=812 slicename=p_s\n');
  t.is(journalLine('{"level":50,"msg":"hook done","hook":"10-a","detail":"two words"}'), '<3>hook done hook=10-a detail="two words"\n');
  t.is(journalLine('{"level":40,"msg":"a\\nb","list":["x"]}'), '<4>a\\nb list=["x"]\n');
  t.is(journalLine('{"level":20,"msg":"d","line":"x\\ny"}'), '<7>d line="x\\ny"\n');
  t.is(journalLine('{"level":60,"msg":"f"}'), '<2>f\n');
  t.is(journalLine('not json\n'), '<6>not json\n');
});

test('auto: journal only when stdout is the stream JOURNAL_STREAM names (device:inode)', (t) => {
  const file = path.join(tempDir(), 'out');
  const fd = fs.openSync(file, 'w');
  const st = fs.fstatSync(fd, { bigint: true });
  t.is(resolveLogFormat('auto', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }), 'journal');
  t.is(resolveLogFormat('auto', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }), 'json');
  t.is(resolveLogFormat('auto', fd, {}), 'json');
  t.is(resolveLogFormat('json', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }), 'json');
  t.is(resolveLogFormat('journal', fd, {}), 'journal');
  fs.closeSync(fd);
});

test('a failing destination drops and counts, never throws', (t) => {
  const before = logStats().dropped;
  const dest = safeDestination(9999, 'json'); // EBADF
  t.notThrows(() => dest.write('{"msg":"x"}\n'));
  t.is(logStats().dropped, before + 1);
  t.is(logStats().lastError, 'EBADF');
});
