// Issue 25, point 2: a user's own removal is honoured. A key removed from her authorized_keys, or
// the file emptied or deleted (and staying so through the shrink guard's confirmation), leaves
// sshd's key file and GetSSHKeys; a delete-and-rewrite within the settle time loses nothing.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { startDaemon, getSshKeys, until, type RunningDaemon } from '../helpers/daemon.js';

const tree = path.join(ownFixtures, 'emulab-nfs');
const SLICE = 'cslab_web2';

function setup(): { root: string; ak: string; sshdFile: string; original: string; lines: string[] } {
  const root = copyTree(tree);
  const ak = path.join(root, 'users/cy/.ssh/authorized_keys');
  const original = fs.readFileSync(ak, 'utf8');
  const lines = original.split('\n').filter((l) => l && !l.startsWith('#'));
  return { root, ak, sshdFile: path.join(root, 'etc/sliceid/authorized_keys/cy'), original, lines };
}

const blob = (line: string): string => /(?:ssh-|ecdsa-)\S+ (\S+)/.exec(line)![1]!;
const sshdText = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

/** The refresh that applied a deferred shrink of cy's file (the shrink guard's confirmation). */
const confirmed = (d: RunningDaemon, from: number): Promise<unknown> =>
  d.waitForLog((l) => l.msg === 'refresh' && String(l['trigger']).includes('confirm') && !((l['stale'] as string[] | undefined) ?? []).includes('authorized_keys:cy'), 10000, from);

test.serial('a key removed from, then the whole of, a user-owned authorized_keys leaves sshd and GetSSHKeys', async (t) => {
  const { root, ak, sshdFile, original, lines } = setup();
  t.true(lines.length >= 2);
  const d = await startDaemon(root);
  try {
    for (const l of lines) t.true(sshdText(sshdFile).includes(blob(l)));
    t.true((await getSshKeys(d.port))[SLICE]!.includes(blob(lines[0]!)));

    // One key removed (the RSA one GetSSHKeys lists).
    let from = d.logs.length;
    fs.writeFileSync(ak, original.split('\n').filter((l) => l !== lines[0]).join('\n'));
    await confirmed(d, from);
    await until(() => !sshdText(sshdFile).includes(blob(lines[0]!)), 5000, 'the key to leave the sshd file');
    t.true(sshdText(sshdFile).includes(blob(lines[1]!)), 'the other keys stay');
    t.false((await getSshKeys(d.port))[SLICE]!.includes(blob(lines[0]!)));

    // The file emptied: every key of hers goes.
    from = d.logs.length;
    fs.writeFileSync(ak, '');
    await confirmed(d, from);
    await until(() => !fs.existsSync(sshdFile), 5000, 'the sshd key file to be removed');
    t.deepEqual(await getSshKeys(d.port), { [SLICE]: '' });

    // Restored, then deleted: the same.
    fs.writeFileSync(ak, original);
    await until(() => sshdText(sshdFile).includes(blob(lines[0]!)), 5000, 'the keys to come back');
    from = d.logs.length;
    fs.rmSync(ak);
    await confirmed(d, from);
    await until(() => !fs.existsSync(sshdFile), 5000, 'the sshd key file to be removed');
    t.deepEqual(await getSshKeys(d.port), { [SLICE]: '' });
  } finally {
    await d.stop();
  }
});

test.serial('a user file deleted and rewritten within the settle time (NFS rewrite) loses nothing', async (t) => {
  const { root, ak, sshdFile, original, lines } = setup();
  const d = await startDaemon(root);
  try {
    const before = sshdText(sshdFile);
    const from = d.logs.length;
    fs.rmSync(ak);
    // The deletion is seen and held back by the shrink guard ...
    await d.waitForLog((l) => l.msg === 'refresh' && ((l['stale'] as string[] | undefined) ?? []).includes('authorized_keys:cy'), 5000, from);
    t.is(sshdText(sshdFile), before);
    // ... and the file is back before it is confirmed: read again, nothing pending any more.
    const back = d.logs.length;
    fs.writeFileSync(ak, original);
    await d.waitForLog((l) => l.msg === 'refresh' && !((l['stale'] as string[] | undefined) ?? []).includes('authorized_keys:cy'), 5000, back);
    const hup = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh' && String(l['trigger']).includes('SIGHUP'), 10000, hup);
    t.falsy(d.logs.slice(from).find((l) => l.msg === 'sshd key files updated' && Number(l['written']) + Number(l['removed']) > 0), 'the sshd file was never rewritten');
    t.is(sshdText(sshdFile), before);
    for (const l of lines) t.true(sshdText(sshdFile).includes(blob(l)));
    t.true((await getSshKeys(d.port))[SLICE]!.includes(blob(lines[0]!)));
  } finally {
    await d.stop();
  }
});
