// The sshd key files as a refresh step: they follow the cache, so a user leaves them only when a
// complete accounts file says so (shrink guard), and the step fails on its own.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { defaultConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { openKeyCache } from '../../src/store/cache.js';
import { ShrinkGuard } from '../../src/daemon/shrink.js';
import { refreshOnce, type RefreshContext } from '../../src/daemon/refresh.js';
import { forgetSshdKeys } from '../../src/writers/sshd-keys.js';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { until } from '../helpers/daemon.js';

const SETTLE_MS = 200;

function setup(t: { teardown(fn: () => void): void }): { ctx: RefreshContext; accounts: string; file: (login: string) => string } {
  const paths = nodePaths(copyTree(path.join(ownFixtures, 'emulab-pnode')));
  forgetSshdKeys(paths);
  fs.mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const cache = openKeyCache(paths.database);
  t.teardown(() => cache.close());
  const config = defaultConfig();
  config.geniGet.enabled = false;
  const ctx: RefreshContext = { paths, config, configFile: undefined, cache, logger: silentLogger, shrinkGuard: new ShrinkGuard(SETTLE_MS) };
  return { ctx, accounts: path.join(paths.tmccDir(), 'accounts'), file: (login) => path.join(paths.sshdKeysDir, login) };
}

const read = (f: string): string | undefined => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined);

test('each user the cache serves gets a file with exactly the keys authorized-keys prints', async (t) => {
  const { ctx, file } = setup(t);
  const out = await refreshOnce(ctx, 'test', true);
  t.deepEqual(out.faults, []);
  for (const u of ctx.cache.users()) t.is(read(file(u.login)), `${ctx.cache.userKeys(u.login).join('\n')}\n`, u.login);
  t.deepEqual(fs.readdirSync(ctx.paths.sshdKeysDir).sort(), ['ada', 'ben']);
});

test('a user leaves the files only when a complete accounts file says so, after the settle time', async (t) => {
  const { ctx, accounts, file } = setup(t);
  await refreshOnce(ctx, 'start', true);
  const ben = read(file('ben'));
  t.truthy(ben);
  const full = fs.readFileSync(accounts, 'utf8');
  const withoutBen = full.split('\n').filter((l) => !/LOGIN=ben/.test(l));
  // Cut short (last line unterminated): not complete, ben keeps his file however long it stays.
  fs.writeFileSync(accounts, withoutBen.join('\n').replace(/\n+$/, ''));
  await refreshOnce(ctx, 'files', false);
  t.is(read(file('ben')), ben);
  // Complete but shorter: held by the shrink guard at first ...
  fs.writeFileSync(accounts, `${withoutBen.join('\n').replace(/\n+$/, '')}\n`);
  const first = await refreshOnce(ctx, 'files', false);
  t.truthy(first.confirmInMs);
  t.is(read(file('ben')), ben);
  // ... and applied when the same content is read again after the settle time.
  await until(async () => (await refreshOnce(ctx, 'confirm', false), !fs.existsSync(file('ben'))), 10000, "ben's file to go");
  t.truthy(read(file('ada')));
  // Back in the slice: back in the files at once (growing needs no confirmation).
  fs.writeFileSync(accounts, full);
  await refreshOnce(ctx, 'files', false);
  t.is(read(file('ben')), ben);
});

test('an unsafe key directory is a fault of its own: the keys still update, the files stay', async (t) => {
  const { ctx, accounts, file } = setup(t);
  await refreshOnce(ctx, 'start', true);
  const before = ctx.cache.sliceKeys().length;
  const ada = read(file('ada'));
  fs.chmodSync(path.join(ctx.paths.root, 'etc'), 0o777);
  fs.appendFileSync(accounts, 'PUBKEY LOGIN=ada KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl new@key"\n');
  const out = await refreshOnce(ctx, 'files', false);
  t.is(ctx.cache.sliceKeys().length, before + 1);
  t.is(out.identityError, undefined);
  t.deepEqual(out.faults.filter((f) => f.startsWith('sshd keys:')).length, 1);
  t.regex(out.faults.join('\n'), /sshd keys: files not updated: .*\/etc is writable by group or others/);
  t.is(read(file('ada')), ada);
  fs.chmodSync(path.join(ctx.paths.root, 'etc'), 0o755);
  const healed = await refreshOnce(ctx, 'files', false);
  t.deepEqual(healed.faults, []);
  t.regex(read(file('ada')) ?? '', /new@key\n$/);
});
