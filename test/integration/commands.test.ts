// The query commands against a cache the real daemon filled, then without the daemon.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures, tempDir } from '../helpers/fixtures.js';
import { startDaemon, runCli } from '../helpers/daemon.js';

const tree = path.join(ownFixtures, 'emulab-pnode');
const expected = JSON.parse(fs.readFileSync(path.join(tree, 'expected.json'), 'utf8')) as {
  slicename: string;
  GetSSHKeys: Record<string, string>;
  users: Record<string, string[]>;
};

test.serial('keys, authorized-keys and status answer from the cache, with and without the daemon', async (t) => {
  const root = copyTree(tree);
  const d = await startDaemon(root);
  const running = await runCli(['status', '--root', root]);
  t.is(running.code, 0, running.stdout + running.stderr);
  t.regex(running.stdout, /running, pid \d+/);
  t.regex(running.stdout, new RegExp(expected.slicename));
  t.regex(running.stdout, /problems\s+none/);
  await d.stop();

  const keys = await runCli(['keys', '--root', root, '--json']);
  t.is(keys.code, 0);
  t.deepEqual(JSON.parse(keys.stdout), expected.GetSSHKeys);
  const one = await runCli(['keys', expected.slicename, '--root', root]);
  t.is(one.stdout, `# ${expected.slicename}\n${expected.GetSSHKeys[expected.slicename]}\n`);
  const other = await runCli(['keys', 'not_this_slice', '--root', root]);
  t.is(other.code, 1);
  t.is(other.stdout, '');

  for (const [login, userKeys] of Object.entries(expected.users)) {
    const r = await runCli(['authorized-keys', login, '--root', root]);
    t.is(r.code, 0);
    t.is(r.stdout, `${userKeys.join('\n')}\n`, login);
  }
  const unknown = await runCli(['authorized-keys', 'nobody-here', '--root', root]);
  t.deepEqual([unknown.code, unknown.stdout], [0, '']);

  const stopped = await runCli(['status', '--root', root, '--json']);
  t.is(stopped.code, 3);
  const report = JSON.parse(stopped.stdout) as { daemon: { running: boolean }; problems: string[] };
  t.false(report.daemon.running);
  t.true(report.problems.includes('daemon not running'));
  const refresh = await runCli(['refresh', '--root', root]);
  t.is(refresh.code, 1);
  t.regex(refresh.stderr, /no running daemon/);
});

test.serial('query commands on a node where sliceid never ran: no output, clear status', async (t) => {
  const root = tempDir();
  const ak = await runCli(['authorized-keys', 'ada', '--root', root]);
  t.deepEqual([ak.code, ak.stdout], [0, '']);
  const keys = await runCli(['keys', '--root', root, '--json']);
  t.deepEqual(JSON.parse(keys.stdout), {});
  const status = await runCli(['status', '--root', root]);
  t.is(status.code, 3);
  t.regex(status.stdout, /has not run on this node/);
});

test.serial('usage errors exit 2 with the usage line', async (t) => {
  const r = await runCli(['authorized-keys', '--root', tempDir()]);
  t.is(r.code, 2);
  t.regex(r.stderr, /usage: sliceid authorized-keys USER/);
  const bad = await runCli(['frobnicate']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /unknown command "frobnicate"/);
});
