// Reload is real (issue 25, point 5): SIGHUP and a change of the config file read the config again;
// an invalid one is refused and reported (log, status) while the daemon keeps the one it runs with;
// settings that need new listeners are reported as waiting for a restart; `status` shows the
// running daemon's config, not the default file's.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ownFixtures } from '../helpers/fixtures.js';
import { getSshKeys, runCli, startDaemon, until, type RunningDaemon } from '../helpers/daemon.js';

const pnode = path.join(ownFixtures, 'emulab-pnode');
const expected = JSON.parse(fs.readFileSync(path.join(pnode, 'expected.json'), 'utf8')) as { slicename: string; GetSSHKeys: Record<string, string>; GetSSHKeys_all_types: Record<string, string> };
const OTHER_URN = 'urn:publicid:IDN+emulab.net:otherproj+slice+otherexp';

interface Report {
  daemon: { running: boolean; pid?: number };
  config?: { file?: string; from: string };
  problems: string[];
}

async function status(root: string, extra: string[] = []): Promise<{ code: number | null; report: Report }> {
  const r = await runCli(['status', '--root', root, '--json', ...extra]);
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}

/** Write the config, then wait for the refresh that follows (the file's change is an event). */
async function rewrite(d: RunningDaemon, file: string, text: string): Promise<void> {
  const from = d.logs.length;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  await d.waitForLog((l) => l.msg === 'refresh', 10_000, from);
}

test.serial('a config file created and changed under the running daemon is applied; an invalid one is refused and reported', async (t) => {
  const root = copyTree(pnode);
  const file = path.join(root, 'etc/sliceid/sliceid.toml');
  fs.mkdirSync(path.dirname(file), { recursive: true }); // as the package installs it, with no file yet
  const d = await startDaemon(root);
  try {
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), expected.slicename);
    // [facts] slice_urn added: the slice changes without a restart.
    await rewrite(d, file, `[facts]\nslice_urn = "${OTHER_URN}"\n`);
    t.truthy(d.logs.find((l) => l.msg === 'config reloaded'));
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), 'otherproj_otherexp');
    t.deepEqual(Object.keys(await getSshKeys(d.port)), ['otherproj_otherexp']);
    // GetSSHKeys' key types follow the file.
    await rewrite(d, file, `[facts]\nslice_urn = "${OTHER_URN}"\n[api]\ngetsshkeys_key_types = "all"\n`);
    t.deepEqual(Object.values(await getSshKeys(d.port)), Object.values(expected.GetSSHKeys_all_types));
    let s = await status(root);
    t.is(s.code, 0, s.report.problems.join('\n'));
    t.like(s.report.config, { file, from: 'daemon' });
    // Invalid: refused, reported (log and status), the running config kept.
    const from = d.logs.length;
    await rewrite(d, file, `[api]\nport = "eight-twelve"\n`);
    const refused = await d.waitForLog((l) => l.msg === 'config not reloaded: the file is invalid; the daemon keeps the config it runs with', 5000, from);
    t.regex(String(refused['err']), /sliceid\.toml:2: "eight-twelve" is not valid for api\.port/);
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), 'otherproj_otherexp', 'the slice of the config it runs with');
    t.deepEqual(Object.values(await getSshKeys(d.port)), Object.values(expected.GetSSHKeys_all_types), 'its key types too');
    s = await status(root);
    t.is(s.code, 1);
    t.true(s.report.problems.some((p) => /config not reloaded, the daemon keeps the one it loaded at .*sliceid\.toml:2: "eight-twelve"/.test(p)), s.report.problems.join('\n'));
    // Fixed: the problem goes; the default slice comes back.
    await rewrite(d, file, `# nothing set\n`);
    t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), expected.slicename);
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
    s = await status(root);
    t.is(s.code, 0, s.report.problems.join('\n'));
  } finally {
    await d.stop();
  }
});

test.serial('SIGHUP reads the config again; a listener setting is reported as needing a restart and the old listeners serve on', async (t) => {
  const root = copyTree(pnode);
  const file = path.join(root, 'etc/sliceid/sliceid.toml');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '[log]\nlevel = "debug"\n');
  const d = await startDaemon(root);
  try {
    let from = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'config reloaded', 10_000, from);
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 10_000, from);
    from = d.logs.length;
    await rewrite(d, file, '[log]\nlevel = "debug"\n[api]\nlisten = ["127.0.0.1"]\n');
    const line = await d.waitForLog((l) => l.msg === 'config reloaded; some settings need a restart', 5000, from);
    t.deepEqual(line['restart'], ['[api] listen: ["127.0.0.1","::1"] -> ["127.0.0.1"]']);
    const s = await status(root);
    t.is(s.code, 1);
    t.true(s.report.problems.some((p) => p.includes('[api] listen: ["127.0.0.1","::1"] -> ["127.0.0.1"]: takes effect at the next restart')), s.report.problems.join('\n'));
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
  } finally {
    await d.stop();
  }
});

test.serial("status reads the running daemon's config (its --config file), not the default one", async (t) => {
  const root = copyTree(pnode);
  const other = path.join(root, 'srv/other.toml');
  fs.mkdirSync(path.dirname(other), { recursive: true });
  fs.writeFileSync(other, '[api]\ngetsshkeys_key_types = "all"\n');
  // The default file says otherwise: status must not read it while the daemon runs.
  const defaultFile = path.join(root, 'etc/sliceid/sliceid.toml');
  fs.mkdirSync(path.dirname(defaultFile), { recursive: true });
  fs.writeFileSync(defaultFile, '[api]\ngetsshkeys_key_types = ["ssh-dss"]\n');
  const d = await startDaemon(root, ['--config', other]);
  try {
    t.deepEqual(Object.values(await getSshKeys(d.port)), Object.values(expected.GetSSHKeys_all_types));
    const s = await until(async () => {
      const r = await status(root);
      return r.report.config ? r : undefined;
    }, 10_000, 'status to show the config');
    t.like(s.report.config, { file: other, from: 'daemon' });
    // ["ssh-dss"] would leave the slice's entry empty: a problem status would report.
    t.is(s.code, 0, s.report.problems.join('\n'));
  } finally {
    await d.stop();
  }
  const stopped = await status(root);
  t.like(stopped.report.config, { file: defaultFile, from: 'disk' });
});
