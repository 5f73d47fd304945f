// `sliceid status` never says "problems none" while something is wrong (issue 10, item 7), and
// Emulab data as Emulab writes it (CRLF) reaches the API and sshd.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, goodTrees } from '../helpers/fixtures.js';
import { runCli, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { python, type PyAnswer } from '../api/helpers.js';
import { nodePaths } from '../../src/paths.js';

const own = (name: string) => goodTrees().find((g) => g.label === `own/${name}`)!;
const accountsOf = (root: string): string => path.join(root, 'var/emulab/boot/tmcc/accounts');

interface Report {
  problems: string[];
  sources: Array<{ id: string; stale: boolean; lastStatus: string }>;
}

/** `status --json` and `status` (the same exit code, checked) */
async function status(root: string): Promise<{ code: number | null; report: Report; human: string }> {
  const json = await runCli(['status', '--root', root, '--json']);
  const human = await runCli(['status', '--root', root]);
  if (json.code !== human.code) throw new Error(`status --json exited ${json.code}, status ${human.code}`);
  return { code: json.code, report: JSON.parse(json.stdout) as Report, human: human.stdout };
}

async function withDaemon(root: string, fn: (d: RunningDaemon) => Promise<void>): Promise<void> {
  const d = await startDaemon(root);
  try {
    await fn(d);
  } finally {
    await d.stop();
  }
}

test.serial('CRLF accounts file: every user and key is served (Python xmlrpc.client over TCP and the socket, sshd), status healthy', async (t) => {
  const tree = own('emulab-pnode');
  const root = copyTree(tree.source);
  fs.writeFileSync(accountsOf(root), fs.readFileSync(accountsOf(root), 'utf8').replace(/\n/g, '\r\n'));
  await withDaemon(root, async (d) => {
    const [tcp, unix] = (await python([
      { transport: 'tcp', url: `http://localhost:${d.port}/`, calls: [['GetSSHKeys', []]] },
      { transport: 'unix-http10', socket: d.socket!, calls: [['GetSSHKeys', []]] },
    ])) as [PyAnswer[], PyAnswer[]];
    for (const answer of [tcp[0]!, unix[0]!]) {
      const entry = (answer.ok as Record<string, string>)[tree.expected.slicename] ?? '';
      // Every PlanetLab-type key of the slice is listed (whatever else the key-type setting lets through), no CR anywhere.
      const lines = entry.split('\n');
      for (const k of tree.expected.GetSSHKeys[tree.expected.slicename]!.split('\n')) t.true(lines.includes(k), k.slice(0, 40));
      t.false(entry.includes('\r'));
    }
    for (const [login, keys] of Object.entries(tree.expected.users)) {
      const r = await runCli(['authorized-keys', login, '--root', root]);
      t.is(r.stdout, `${keys.join('\n')}\n`, login);
    }
    const s = await status(root);
    t.is(s.code, 0, s.human);
    t.deepEqual(s.report.problems, []);
    t.regex(s.human, /^problems\s+none$/m);
  });
});

test.serial('an accounts file with nothing usable and nothing cached: status names the source and the keyless slice, exit 1', async (t) => {
  const tree = own('emulab-pnode');
  const root = copyTree(tree.source);
  fs.writeFileSync(accountsOf(root), 'THIS IS NOT AN ACCOUNTS LINE\nPUBKEY LOGIN=ada\n');
  await withDaemon(root, async () => {
    const s = await status(root);
    t.is(s.code, 1, s.human);
    t.like(s.report.sources.find((x) => x.id === 'tmcc:accounts'), { stale: false, lastStatus: 'invalid' });
    t.true(s.report.problems.some((p) => /^source tmcc:accounts \(.*accounts\) is not usable as it is: invalid \(none of its 2 lines is usable\)$/.test(p)), s.report.problems.join('\n'));
    t.true(s.report.problems.some((p) => p.startsWith(`slice ${tree.expected.slicename} has no key`)), s.report.problems.join('\n'));
    t.notRegex(s.human, /problems\s+none/);
    // Nothing of the file's text is echoed in the problem lines.
    t.false(s.report.problems.some((p) => p.includes('THIS IS NOT')));
  });
});

test.serial('a node with no key source: the slice is known and keyless, status says so, exit 1', async (t) => {
  const tree = own('hostname-only');
  const root = copyTree(tree.source);
  await withDaemon(root, async () => {
    const s = await status(root);
    t.is(s.code, 1, s.human);
    t.true(s.report.problems.some((p) => p === `slice ${tree.expected.slicename} has no key: its GetSSHKeys entry is empty, so the Raven tools find no keys`), s.report.problems.join('\n'));
  });
});

test.serial('a refused identity while the daemon runs is a problem line, with or without the faults file', async (t) => {
  const tree = own('emulab-pnode');
  const root = copyTree(tree.source);
  await withDaemon(root, async (d) => {
    t.is((await status(root)).code, 0);
    const from = d.logs.length;
    fs.writeFileSync(path.join(root, 'var/emulab/boot/nickname'), 'node1.ra$dio.wlab\n');
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh', 15000, from);
    const s = await status(root);
    t.is(s.code, 1, s.human);
    const identity = (p: string) => /nickname/.test(p) && /ra\$dio/.test(p);
    t.is(s.report.problems.filter(identity).length, 1, s.report.problems.join('\n'));
    fs.rmSync(nodePaths(root).faultsFile, { force: true });
    const without = await status(root);
    t.is(without.code, 1, without.human);
    t.true(without.report.problems.some((p) => p.startsWith('identity: ') && identity(p)), without.report.problems.join('\n'));
  });
});
