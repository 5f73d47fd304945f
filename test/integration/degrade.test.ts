// Issue 25, point 4: degrade, never vanish. When the identity cannot be derived the daemon keeps
// serving the last identity and keys from its state (or, at a first start, no slice yet), reports
// it in status (exit 1), keeps watching, and recovers by itself when the data returns.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { startDaemon, getSshKeys, runCli, until } from '../helpers/daemon.js';

interface Report {
  identity?: { slicename: string };
  identityError?: string;
  problems: string[];
}

const status = async (root: string): Promise<{ code: number | null; report: Report }> => {
  const r = await runCli(['status', '--root', root, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
};

test.serial('restarted with the testbed data gone: serves the last identity and keys, reports it, recovers', async (t) => {
  const source = path.join(ownFixtures, 'emulab-pnode');
  const expected = JSON.parse(fs.readFileSync(path.join(source, 'expected.json'), 'utf8')) as { slicename: string; GetSSHKeys: Record<string, string> };
  const root = copyTree(source);
  let d = await startDaemon(root);
  await d.stop();
  // Host name `localhost`, /var/emulab/boot missing.
  const hostname = path.join(root, 'etc/hostname');
  const boot = path.join(root, 'var/emulab/boot');
  const realHostname = fs.readFileSync(hostname, 'utf8');
  fs.renameSync(boot, path.join(root, 'boot.away'));
  fs.writeFileSync(hostname, 'localhost\n');
  d = await startDaemon(root);
  try {
    t.is(d.proc.exitCode, null);
    t.truthy(d.logs.find((l) => l.msg === 'ready' && l['degraded']));
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys, 'the last identity and the cached keys');
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), expected.slicename, 'files left in place');
    let s = await status(root);
    t.is(s.code, 1);
    t.is(s.report.identity?.slicename, expected.slicename);
    t.truthy(s.report.problems.find((p) => p.includes('localhost')), s.report.problems.join('\n'));
    t.truthy(s.report.problems.find((p) => p.includes('serving the last good identity')));

    // The data returns: the daemon notices by itself (inotify) and the fault is gone.
    fs.renameSync(path.join(root, 'boot.away'), boot);
    fs.writeFileSync(hostname, realHostname);
    await until(async () => !(await status(root)).report.identityError, 10000, 'the identity to be derived again');
    s = await status(root);
    t.falsy(s.report.problems.find((p) => p.includes('identity')), s.report.problems.join('\n'));
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
  } finally {
    await d.stop();
  }
});

test.serial('first start with no state and no identity: no slice served yet, reported, picked up when the data arrives', async (t) => {
  const source = path.join(ownFixtures, 'hostname-only');
  const expected = JSON.parse(fs.readFileSync(path.join(source, 'expected.json'), 'utf8')) as { slicename: string; GetSSHKeys: Record<string, string> };
  const root = copyTree(source);
  const hostname = path.join(root, 'etc/hostname');
  const realHostname = fs.readFileSync(hostname, 'utf8');
  fs.writeFileSync(hostname, 'localhost.localdomain\n');
  const d = await startDaemon(root);
  try {
    t.deepEqual(await getSshKeys(d.port), {}, 'no slice yet');
    t.false(fs.existsSync(path.join(root, 'etc/slicename')));
    const s = await status(root);
    t.is(s.code, 1);
    t.truthy(s.report.problems.find((p) => p.includes('no identity yet')), s.report.problems.join('\n'));
    fs.writeFileSync(hostname, realHostname);
    await until(() => fs.existsSync(path.join(root, 'etc/slicename')), 10000, '/etc/slicename to be written');
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), expected.slicename);
    await until(async () => JSON.stringify(await getSshKeys(d.port)) === JSON.stringify(expected.GetSSHKeys), 5000, 'the slice to be served');
  } finally {
    await d.stop();
  }
});
