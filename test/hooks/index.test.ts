// The hooks pass (runner side) and the runner lock: hooks in order, once per slice; a run recorded
// as running before it starts; one runner at a time.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { hookContext, type HookContext } from '../../src/hooks/index.js';
import { runPass } from '../../src/hooks/pass.js';
import { readHookRecords } from '../../src/hooks/records.js';
import { acquireHooksLock, hooksRunner, requestHooks, takeHooksRequest, hooksRequested } from '../../src/hooks/lock.js';
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
  const opts = { dir, recordsFile, timeoutMs: 10_000, logger: cap.logger };
  const ran = (): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
  return { root, dir, recordsFile, opts, ran, cap };
}

const ctx = (name: string): HookContext => hookContext(identity(name), [{ host: '127.0.0.1', port: 812 }]);

test('a pass runs in order what has not run well; again: only the failed one; a new slice runs all', async (t) => {
  const s = setup();
  t.like(await runPass(s.opts, ctx('one')), { hooks: 2, ran: 2, failed: 1, cut: false });
  t.deepEqual(s.ran(), ['a p_one', 'b p_one']);
  fs.writeFileSync(path.join(s.root, 'fixed'), '');
  t.like(await runPass(s.opts, ctx('one')), { ran: 1, failed: 0 });
  t.like(await runPass(s.opts, ctx('one')), { ran: 0 });
  await runPass(s.opts, ctx('two'));
  t.deepEqual(s.ran(), ['a p_one', 'b p_one', 'b p_one', 'a p_two', 'b p_two']);
  t.like(readHookRecords(s.recordsFile).slices['urn:publicid:IDN+emulab.net:p+slice+one']!.hooks['20-b'], { outcome: 'ok' });
});

test('a run is recorded as running, with the runner pid, before the hook starts', async (t) => {
  const s = setup();
  const seen = path.join(s.root, 'seen.json');
  writeHook(s.dir, '05-look', `cp ${s.recordsFile} ${seen}`);
  await runPass(s.opts, ctx('one'));
  const during = JSON.parse(fs.readFileSync(seen, "utf8")) as { slices: Record<string, { hooks: Record<string, { outcome: string; runner: number }> }> };
  t.like(during.slices['urn:publicid:IDN+emulab.net:p+slice+one']!.hooks['05-look'], { outcome: 'running', runner: process.pid });
  t.like(readHookRecords(s.recordsFile).slices['urn:publicid:IDN+emulab.net:p+slice+one']!.hooks['05-look'], { outcome: 'ok' });
});

test('interrupted (a new request) before the next hook: the pass stops there', async (t) => {
  const s = setup();
  const r = await runPass({ ...s.opts, interrupted: () => s.ran().length > 0 }, ctx('one'));
  t.like(r, { ran: 1, cut: true });
  t.deepEqual(s.ran(), ['a p_one']);
});

test('the runner lock: one holder, named by pid; the request mark is taken once', (t) => {
  const state = tempDir();
  const first = acquireHooksLock(state);
  t.true('lock' in first);
  t.like(hooksRunner(state), { held: true, pid: process.pid });
  if ('lock' in first) first.lock.release();
  t.like(hooksRunner(state), { held: false });
  t.false(hooksRequested(state));
  requestHooks(state);
  t.true(hooksRequested(state));
  t.true(takeHooksRequest(state));
  t.false(takeHooksRequest(state));
});
