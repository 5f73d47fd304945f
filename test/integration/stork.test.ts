// The Raven/Stork client's reading of the node (spec section 1) against the real daemon on every
// fixture tree: it must get the slice name and convert every listed key to an RSA key on every
// node whose slice has at least one RSA key. Also `getsshkeys_key_types = "all"` (what the
// fixtures' GetSSHKeys_all_types say, and what the Stork client cannot use), and sshd's keys.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, goodTrees, projectDir } from '../helpers/fixtures.js';
import { runCli, startDaemon } from '../helpers/daemon.js';
import { python } from '../api/helpers.js';

interface StorkResult {
  ok: boolean;
  slicename?: string;
  keys?: number;
  users?: string[];
  error?: string;
}

process.setMaxListeners(64); // startDaemon adds an exit listener per daemon; this file starts many

const storkClient = path.join(projectDir, 'test', 'integration', 'stork_client.py');

function stork(root: string, port: number): Promise<StorkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [storkClient, root, `http://localhost:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as StorkResult);
      } catch {
        reject(new Error(`stork_client.py exited ${code} without JSON: ${out} ${err}`));
      }
    });
  });
}

const rsaCount = (joined: string | undefined): number => (joined ?? '').split('\n').filter((k) => k.startsWith('ssh-rsa ')).length;
const allTypes = (joined: string | undefined): Set<string> => new Set((joined ?? '').split('\n').filter(Boolean).map((k) => k.split(' ')[0]!));

for (const tree of goodTrees()) {
  test.serial(`${tree.label}: the Stork client builds its key database; "all" serves GetSSHKeys_all_types over TCP and the socket; sshd gets users[USER]`, async (t) => {
    const exp = tree.expected;
    const root = copyTree(tree.source);
    const rsa = rsaCount(exp.GetSSHKeys_all_types[exp.slicename]);

    let d = await startDaemon(root);
    try {
      const result = await stork(root, d.port);
      if (rsa > 0) {
        t.deepEqual(result, { ok: true, slicename: exp.slicename, keys: rsa, users: result.users }, JSON.stringify(result));
        t.is(result.users?.length, rsa);
      } else {
        t.deepEqual(result, { ok: false, error: `no keys for ${exp.slicename}` }, 'no RSA key: GetSSHKeys has the slice with ""');
      }
      for (const [login, keys] of Object.entries(exp.users)) {
        const r = await runCli(['authorized-keys', login, '--root', root]);
        t.is(r.stdout, keys.length ? `${keys.join('\n')}\n` : '', `authorized-keys ${login}`);
      }
      const all = await runCli(['keys', '--all', '--json', '--root', root]);
      t.deepEqual(JSON.parse(all.stdout), exp.GetSSHKeys_all_types, 'sliceid keys --all');
      const listed = await runCli(['keys', '--json', '--root', root]);
      t.deepEqual(JSON.parse(listed.stdout), exp.GetSSHKeys, 'sliceid keys');
    } finally {
      await d.stop();
    }

    fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), '[api]\ngetsshkeys_key_types = "all"\n');
    d = await startDaemon(root);
    try {
      const [tcp, unix] = await python([
        { transport: 'tcp', url: `http://localhost:${d.port}/`, calls: [['GetSSHKeys', []]] },
        { transport: 'unix-http10', socket: d.socket!, calls: [['GetSSHKeys', []]] },
      ]);
      t.deepEqual(tcp![0], { ok: exp.GetSSHKeys_all_types }, 'all key types over TCP');
      t.deepEqual(unix![0], { ok: exp.GetSSHKeys_all_types }, 'all key types over the socket');
      // The reason for the default: one key of another type and the Stork client stops.
      const types = allTypes(exp.GetSSHKeys_all_types[exp.slicename]);
      const result = await stork(root, d.port);
      if ([...types].some((type) => type !== 'ssh-rsa')) t.regex(result.error ?? '', /^Invalid or missing publickeyfile/, JSON.stringify(result));
      else t.is(result.ok, rsa > 0);
    } finally {
      await d.stop();
    }
  });
}

test.serial('status: how many keys of which types GetSSHKeys leaves out; a problem (exit 1) when that empties the slice\'s entry', async (t) => {
  const tree = goodTrees().find((x) => x.label.startsWith('own/') && rsaCount(x.expected.GetSSHKeys_all_types[x.expected.slicename]) > 0 && allTypes(x.expected.GetSSHKeys_all_types[x.expected.slicename]).size > 1)!;
  t.truthy(tree, 'an own tree with RSA and other keys');
  const exp = tree.expected;
  const root = copyTree(tree.source);
  const total = exp.GetSSHKeys_all_types[exp.slicename]!.split('\n').length;
  const rsa = rsaCount(exp.GetSSHKeys_all_types[exp.slicename]);
  let d = await startDaemon(root);
  try {
    const ok = await runCli(['status', '--root', root]);
    t.is(ok.code, 0, ok.stdout);
    t.regex(ok.stdout, new RegExp(`getsshkeys  lists ${rsa} of ${total} keys \\(types: planetlab \\(ssh-rsa, ssh-dss\\)\\); leaves out \\d+ `));
    t.regex(ok.stdout, /problems\s+none/);
  } finally {
    await d.stop();
  }
  // Only types the slice's users do not have: its entry is "", and status says why.
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), '[api]\ngetsshkeys_key_types = ["ssh-dss"]\n');
  d = await startDaemon(root);
  try {
    const [answers] = await python([{ transport: 'tcp', url: `http://localhost:${d.port}/`, calls: [['GetSSHKeys', []]] }]);
    t.deepEqual(answers![0], { ok: { [exp.slicename]: '' } });
    const bad = await runCli(['status', '--root', root, '--json']);
    t.is(bad.code, 1, bad.stdout);
    const report = JSON.parse(bad.stdout) as { problems: string[]; getSshKeys: { listed: number; leftOut: Record<string, number> } };
    t.is(report.getSshKeys.listed, 0);
    t.is(Object.values(report.getSshKeys.leftOut).reduce((a, b) => a + b, 0), total);
    t.true(report.problems.some((p) => p.startsWith(`GetSSHKeys lists no key for slice ${exp.slicename}: all ${total} of its keys are of types it leaves out`)), report.problems.join('\n'));
  } finally {
    await d.stop();
  }
});
