import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { discoverHooks } from '../../src/hooks/discover.js';
import { LineSplitter, runHook, SAFE_PATH, type HookContext, type RunOptions } from '../../src/hooks/runner.js';
import { tempDir } from '../helpers/fixtures.js';
import { until } from '../helpers/daemon.js';
import { alive, captureLogger, writeHook } from './helpers.js';

const CTX: HookContext = {
  slicename: 'p_s',
  sliceUrn: 'urn:publicid:IDN+emulab.net:p+slice+s',
  sliceHrn: 'emulab\\.net.p.s',
  nodeUrn: 'urn:publicid:IDN+emulab.net+node+pc1',
  apiUrl: 'http://127.0.0.1:812/',
  apiSocket: '/tmp/nodemanager.api',
};

function hookIn(body: string) {
  const dir = path.join(tempDir(), 'slice.d');
  writeHook(dir, 'h', body);
  return discoverHooks(dir).hooks[0]!;
}


async function run(body: string, opts: Partial<RunOptions> = {}) {
  const cap = captureLogger();
  const hook = hookIn(body);
  const result = await runHook(hook, CTX, { timeoutMs: 10_000, logger: cap.logger, ...opts }).result;
  const output = cap.lines.filter((l) => l['msg'] === 'hook output').map((l) => l['line'] as string);
  return { result, output, lines: cap.lines, hook };
}

test('environment: the slice context and a minimal PATH only; stdin is /dev/null; cwd /; a process group of its own', async (t) => {
  const { result, output } = await run(
    ['env | sort', 'echo "stdin=$(readlink /proc/self/fd/0)"', 'cat', 'echo "cwd=$(pwd)"', 'echo "pgid=$(ps -o pgid= -p $$ | tr -d " ") pid=$$"'].join('\n'),
  );
  t.is(result.outcome, 'ok');
  t.is(result.exitCode, 0);
  const env = Object.fromEntries(output.filter((l) => /^[A-Z_]+=/.test(l) && !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_=')).map((l) => l.split(/=(.*)/s).slice(0, 2)));
  t.deepEqual(env, {
    HOME: '/root',
    LANG: 'C',
    PATH: SAFE_PATH,
    SLICEID_API_SOCKET: CTX.apiSocket,
    SLICEID_API_URL: CTX.apiUrl,
    SLICEID_NODE_URN: CTX.nodeUrn,
    SLICEID_SLICENAME: CTX.slicename,
    SLICEID_SLICE_HRN: CTX.sliceHrn,
    SLICEID_SLICE_URN: CTX.sliceUrn,
  });
  t.true(output.includes('stdin=/dev/null'));
  t.true(output.includes('cwd=/'));
  const ids = /^pgid=(\d+) pid=(\d+)$/.exec(output.find((l) => l.startsWith('pgid=')) ?? '');
  t.truthy(ids);
  t.is(ids![1], ids![2]);
});

test('a non-zero exit is a failed run with its status; stderr goes to the log too', async (t) => {
  const { result, lines } = await run('echo oops >&2\nexit 3');
  t.is(result.outcome, 'failed');
  t.is(result.exitCode, 3);
  t.true(lines.some((l) => l['msg'] === 'hook output' && l['stream'] === 'stderr' && l['line'] === 'oops'));
  t.true(result.durationMs >= 0);
});

test('at the time limit the whole process group is killed', async (t) => {
  const dir = tempDir();
  const pidFile = path.join(dir, 'child.pid');
  const started = Date.now();
  const { result } = await run(`sleep 60 & echo $! > ${pidFile}\nwait`, { timeoutMs: 300, killGraceMs: 5000 });
  t.is(result.outcome, 'timed-out');
  t.regex(result.detail ?? '', /time limit of 0.3 s/);
  t.true(Date.now() - started < 4000, 'the SIGTERM ended it, not the grace time');
  const child = Number(fs.readFileSync(pidFile, 'utf8'));
  await until(() => !alive(child), 2000, 'the background child to be killed');
  t.pass();
});

test('a hook that ignores SIGTERM is killed with SIGKILL after the grace time', async (t) => {
  const started = Date.now();
  const { result } = await run("trap '' TERM\nsleep 60\n", { timeoutMs: 200, killGraceMs: 300 });
  t.is(result.outcome, 'timed-out');
  t.is(result.signal, 'SIGKILL');
  t.true(Date.now() - started < 5000);
});

test('stopping the daemon interrupts a running hook', async (t) => {
  const cap = captureLogger();
  const running = runHook(hookIn('sleep 60'), CTX, { timeoutMs: 60_000, logger: cap.logger });
  setImmediate(() => running.abort());
  const result = await running.result;
  t.is(result.outcome, 'interrupted');
  t.is(result.signal, 'SIGTERM');
});

test('a hook that cannot start is an error, not a crash', async (t) => {
  const cap = captureLogger();
  const hook = { name: 'gone', path: path.join(tempDir(), 'gone'), hash: 'x' };
  const result = await runHook(hook, CTX, { timeoutMs: 1000, logger: cap.logger }).result;
  t.is(result.outcome, 'error');
  t.regex(result.detail ?? '', /could not start: .*ENOENT/);
});

test('a process left in the background holding the output does not keep the run open', async (t) => {
  const started = Date.now();
  const { result, output } = await run('echo before\n(sleep 4; echo late) &\nexit 0');
  t.is(result.outcome, 'ok');
  t.true(Date.now() - started < 3500, `settled after ${Date.now() - started} ms`);
  t.deepEqual(output, ['before']);
});

test('output: line by line, long lines cut, the total bounded with one warning', async (t) => {
  const { output, lines } = await run(
    `printf 'a\\r\\nb\\n'; head -c 100 /dev/zero | tr '\\0' x; echo; printf 'tail'`,
    { maxLineBytes: 10 },
  );
  t.deepEqual(output, ['a', 'b', 'xxxxxxxxxx', 'tail']);
  t.true(lines.find((l) => l['line'] === 'xxxxxxxxxx')?.['cut'] === true);
  const flood = await run('i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done', { maxOutputBytes: 100 });
  t.is(flood.result.outcome, 'ok');
  t.true(flood.output.length < 20 && flood.output.length > 5, `${flood.output.length} lines logged`);
  t.is(flood.lines.filter((l) => l['msg'] === 'hook output beyond the limit is dropped').length, 1);
});

test('LineSplitter: lines split across chunks, CRLF, bounded', (t) => {
  const got: Array<[string, boolean]> = [];
  const s = new LineSplitter(5, (line, cut) => got.push([line, cut]));
  for (const chunk of ['ab', 'c\nde', 'fghij\r\n', '\n', 'tail']) s.push(Buffer.from(chunk));
  s.end();
  t.deepEqual(got, [['abc', false], ['defgh', true], ['', false], ['tail', false]]);
});
