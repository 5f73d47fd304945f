import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { SliceHooks, hookContext, type HookContext } from '../../src/hooks/index.js';
import { readHookRecords } from '../../src/hooks/records.js';
import type { Identity } from '../../src/identity/types.js';
import { tempDir } from '../helpers/fixtures.js';
import { captureLogger, writeHook } from './helpers.js';

const identity = (name: string): Identity =>
  ({
    slicename: `p_${name}`,
    slice: { urn: `urn:publicid:IDN+emulab.net:p+slice+${name}`, hrn: `emulab\\.net.p.${name}`, project: 'p', name },
    node: { urn: 'urn:publicid:IDN+emulab.net+node+pc1', hrn: 'emulab\\.net.pc1' },
  }) as unknown as Identity;

test('hookContext: the first TCP address as a URL (IPv6 in brackets), the socket, or empty strings', (t) => {
  const ctx = hookContext(identity('s'), [{ host: '::1', port: 812 }, { host: '127.0.0.1', port: 812 }, { socket: '/tmp/nodemanager.api' }]);
  t.like(ctx, { slicename: 'p_s', sliceUrn: 'urn:publicid:IDN+emulab.net:p+slice+s', nodeUrn: 'urn:publicid:IDN+emulab.net+node+pc1', apiUrl: 'http://[::1]:812/', apiSocket: '/tmp/nodemanager.api' });
  t.like(hookContext(identity('s'), [{ socket: '/s' }]), { apiUrl: '', apiSocket: '/s' });
  t.like(hookContext(identity('s'), [{ host: '127.0.0.1', port: 8812 }]), { apiUrl: 'http://127.0.0.1:8812/', apiSocket: '' });
});

function setup() {
  const root = tempDir();
  const dir = path.join(root, 'slice.d');
  const log = path.join(root, 'ran.log');
  const recordsFile = path.join(root, 'hooks.json');
  writeHook(dir, '10-a', `echo "a $SLICEID_SLICENAME" >> ${log}`);
  writeHook(dir, '20-b', `echo "b $SLICEID_SLICENAME" >> ${log}\n[ -e ${root}/fixed ]`);
  const cap = captureLogger();
  const hooks = new SliceHooks({ dir, recordsFile, timeoutMs: 10_000, logger: cap.logger });
  const ran = (): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
  return { root, dir, recordsFile, hooks, ran, cap };
}

const ctx = (name: string): HookContext => hookContext(identity(name), [{ host: '127.0.0.1', port: 812 }]);

test('once per slice and in order; the same slice offered again runs nothing; a new slice runs all', async (t) => {
  const s = setup();
  s.hooks.offer(ctx('one'));
  s.hooks.offer(ctx('one'));
  await s.hooks.idle();
  t.deepEqual(s.ran(), ['a p_one', 'b p_one']);
  s.hooks.offer(ctx('one'));
  await s.hooks.idle();
  t.is(s.ran().length, 2);
  s.hooks.offer(ctx('two'));
  await s.hooks.idle();
  t.deepEqual(s.ran().slice(2), ['a p_two', 'b p_two']);
  const records = readHookRecords(s.recordsFile);
  t.is(records.slices['urn:publicid:IDN+emulab.net:p+slice+one']!.hooks['20-b']!.outcome, 'failed');
  t.true(s.cap.lines.some((l) => l['msg'] === 'hooks done' && l['ran'] === 2 && l['failed'] === 1));
});

test('runPending runs only what failed or changed for the current slice; a new instance (restart) likewise', async (t) => {
  const s = setup();
  s.hooks.offer(ctx('one'));
  await s.hooks.idle();
  fs.writeFileSync(path.join(s.root, 'fixed'), '');
  s.hooks.runPending();
  await s.hooks.idle();
  t.deepEqual(s.ran(), ['a p_one', 'b p_one', 'b p_one']);
  writeHook(s.dir, '10-a', `echo "a2 $SLICEID_SLICENAME" >> ${path.join(s.root, 'ran.log')}`);
  const restarted = new SliceHooks({ dir: s.dir, recordsFile: s.recordsFile, timeoutMs: 10_000, logger: s.cap.logger });
  restarted.offer(ctx('one'));
  await restarted.idle();
  t.deepEqual(s.ran().slice(3), ['a2 p_one']);
});

test('stop interrupts the running hook, records it, and starts no other', async (t) => {
  const s = setup();
  writeHook(s.dir, '05-slow', 'exec sleep 60');
  s.hooks.offer(ctx('one'));
  // A pass starts synchronously: the first hook has been spawned when offer() returns.
  t.true(s.cap.lines.some((l) => l['msg'] === 'hook start' && l['hook'] === '05-slow'));
  await s.hooks.stop();
  t.is(readHookRecords(s.recordsFile).slices['urn:publicid:IDN+emulab.net:p+slice+one']!.hooks['05-slow']!.outcome, 'interrupted');
  t.deepEqual(s.ran(), []);
});
