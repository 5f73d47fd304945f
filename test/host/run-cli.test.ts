// `sliceid run --host` as a command (what the unit and the initscript start): a host booted before
// its guests has none yet, and the daemon must stay up for them (nothing else holds its event loop
// until a guest's listeners do), then stop cleanly on SIGTERM.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { waitFor } from './helpers.js';

test('run --host with no guest yet stays up until SIGTERM, then stops cleanly', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-cli-'));
  const proc = spawn(process.execPath, ['bin/sliceid.js', 'run', '--host', '--root', root, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const state = path.join(root, 'var/run/sliceid.guests');
  await waitFor('the guests file', () => fs.existsSync(state) || gone, 20_000);
  t.deepEqual((JSON.parse(fs.readFileSync(state, 'utf8')) as { guests: unknown[] }).guests, []);
  // The daemon that published its (empty) guest list is still there to be signalled.
  t.true(proc.kill('SIGTERM') && !gone, out);
  t.is(await exited, 0, out);
  t.regex(out, /"msg":"host daemon stopping"/, 'stopped by the signal, not by an empty event loop');
  t.false(fs.existsSync(state), 'guests file removed at the stop');
});
