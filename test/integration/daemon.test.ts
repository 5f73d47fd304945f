// The real daemon on copies of fixture trees: push-driven updates, last-good data, signals, idle cost.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { copyTree, goodTrees, ownFixtures } from '../helpers/fixtures.js';
import { startDaemon, getSshKeys, keyCount, until, runCli } from '../helpers/daemon.js';
import { python } from '../api/helpers.js';

const pnode = path.join(ownFixtures, 'emulab-pnode');
const accountsOf = (root: string): string => path.join(root, 'var/emulab/boot/tmcc/accounts');
// RSA: GetSSHKeys lists only the types PlanetLab served (ssh-rsa, ssh-dss) by default.
const NEW_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDMFlGuTqDaWsx+yr3UMY1ICvojmSOYluhkoZIZdrrI6PQdmAGgY8Y+efFoYJxGwuinKc8gCoHacuhKTUWGnOrlos91uW8b1xn1/iWxHz1pduzwPRZ9lSxXT0NCko7QHg2/XG2AfSdpZ+obV7226FBSfjy7xJ1QXLDY4d6LLXPedJwg6XrIv5p4lzLucLXjlQmrFY+S6Qwy27MULhRPePnHl++eudYCzbR1H2z40IVWtZsGDGz6beZg6P60QnGugnRm1uDoyCkXrqVYpaNu4SaYR9O6xUTeemdrbLASIEYSxoJj4pUnFNMME/cKgRUsBMqyvKR8FOwKFdrj3knm7ydx ben@new';

test.serial('every fixture tree: Python xmlrpc.client gets the expected GetSSHKeys over TCP and the Unix socket', async (t) => {
  for (const tree of goodTrees()) {
    const root = copyTree(tree.source);
    const d = await startDaemon(root);
    try {
      t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), tree.expected.slicename, tree.label);
      const calls: Array<[string, unknown[]]> = [['GetSSHKeys', []], ['GetRecord', []]];
      const [tcp, unix] = await python([
        { transport: 'tcp', url: `http://localhost:${d.port}/`, calls },
        { transport: 'unix-http10', socket: d.socket!, calls },
      ]);
      for (const [how, answers] of [['tcp', tcp], ['unix', unix]] as const) {
        t.deepEqual(answers![0], { ok: tree.expected.GetSSHKeys }, `${tree.label} over ${how}`);
        const record = (answers![1] as { ok: Record<string, unknown> }).ok;
        t.is(record['name'], tree.expected.slicename);
        t.regex(String(record['type']), /^sliver\./);
      }
    } finally {
      await d.stop();
    }
  }
});

test.serial('after a restart with the key sources deleted, the cached keys are still served', async (t) => {
  const root = copyTree(pnode);
  const expected = JSON.parse(fs.readFileSync(path.join(pnode, 'expected.json'), 'utf8')) as { GetSSHKeys: Record<string, string> };
  let d = await startDaemon(root);
  t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
  await d.stop();
  fs.rmSync(path.dirname(accountsOf(root)), { recursive: true });
  d = await startDaemon(root);
  try {
    t.deepEqual(await getSshKeys(d.port), expected.GetSSHKeys);
    const status = await runCli(['status', '--root', root, '--json']);
    const report = JSON.parse(status.stdout) as { sources: Array<{ id: string; stale: boolean }> };
    t.true(report.sources.find((s) => s.id === 'tmcc:accounts')?.stale);
  } finally {
    await d.stop();
  }
});

test.serial('a key appended to the accounts file is served within 2 s', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const before = keyCount(await getSshKeys(d.port));
    fs.appendFileSync(accountsOf(root), `PUBKEY LOGIN=ben KEY="${NEW_KEY}"\n`);
    const appended = Date.now();
    const answer = await until(async () => {
      const a = await getSshKeys(d.port);
      return keyCount(a) === before + 1 ? a : undefined;
    }, 2000, 'the appended key to be served');
    t.true(Object.values(answer)[0]!.endsWith(NEW_KEY));
    t.log(`served ${Date.now() - appended} ms after the append`);
  } finally {
    await d.stop();
  }
});

test.serial('tmcc directory deleted and rewritten 40 times while clients query: never fewer keys', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  const tmcc = path.dirname(accountsOf(root));
  const saved = new Map(fs.readdirSync(tmcc).map((f) => [f, fs.readFileSync(path.join(tmcc, f))]));
  try {
    const expected = keyCount(await getSshKeys(d.port));
    let stop = false;
    let answers = 0;
    let fewer = 0;
    const client = async (): Promise<void> => {
      while (!stop) {
        const n = keyCount(await getSshKeys(d.port));
        answers++;
        if (n < expected) fewer++;
      }
    };
    const clients = [client(), client()];
    for (let i = 0; i < 40; i++) {
      fs.rmSync(tmcc, { recursive: true, force: true });
      await new Promise((r) => setImmediate(r));
      fs.mkdirSync(tmcc);
      for (const [f, data] of saved) fs.writeFileSync(path.join(tmcc, f), data);
      await new Promise((r) => setTimeout(r, 10 + (i % 5) * 20));
    }
    // Let the last rewrite be picked up, then stop the clients.
    await d.waitForLog((l) => l.msg === 'refresh', 3000).catch(() => undefined);
    stop = true;
    await Promise.all(clients);
    t.log(`${answers} answers during 40 rewrites`);
    t.true(answers > 40);
    t.is(fewer, 0);
    t.is(keyCount(await getSshKeys(d.port)), expected);
  } finally {
    await d.stop();
  }
});

test.serial('a truncated accounts file keeps the last good keys and status names the problem', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const good = await getSshKeys(d.port);
    const text = fs.readFileSync(accountsOf(root), 'utf8');
    const from = d.logs.length;
    fs.writeFileSync(accountsOf(root), text.slice(0, text.lastIndexOf('PUBKEY') + 40));
    await d.waitForLog((l) => l.msg === 'refresh', 3000, from);
    t.deepEqual(await getSshKeys(d.port), good);
    const status = await runCli(['status', '--root', root, '--json']);
    const parsed = JSON.parse(status.stdout) as { sources: Array<{ id: string; stale: boolean; reason?: string }> };
    const accounts = parsed.sources.find((s) => s.id.startsWith('tmcc'));
    t.truthy(accounts?.stale);
    t.regex(accounts?.reason ?? '', /truncat|partial|line \d+|cut/i);
    const human = await runCli(['status', '--root', root]);
    t.regex(human.stdout, /stale/i);
    t.regex(human.stdout, /accounts/);
  } finally {
    await d.stop();
  }
});

test.serial('a changed nickname gives a new slice name and slice GID; the node GID stays byte-identical', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const nodeGid = fs.readFileSync(path.join(root, 'etc/node.gid'));
    const sliceGid = fs.readFileSync(path.join(root, 'etc/slice.gid'));
    fs.writeFileSync(path.join(root, 'var/emulab/boot/nickname'), 'node1.radio2.wlab\n');
    await until(() => fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8') === 'wlab_radio2', 15000, 'the new slice name');
    await until(() => !fs.readFileSync(path.join(root, 'etc/slice.gid')).equals(sliceGid), 15000, 'a new slice GID');
    t.true(fs.readFileSync(path.join(root, 'etc/node.gid')).equals(nodeGid));
    const subject = execFileSync('openssl', ['x509', '-noout', '-subject', '-in', path.join(root, 'etc/slice.gid')], { encoding: 'utf8' });
    t.regex(subject, /wlab\.radio2/);
    const answer = await until(async () => {
      const a = await getSshKeys(d.port);
      return 'wlab_radio2' in a ? a : undefined;
    }, 15000, 'GetSSHKeys under the new slice name');
    t.deepEqual(Object.keys(answer), ['wlab_radio2']);
  } finally {
    await d.stop();
  }
});

test.serial('SIGTERM stops within 2 s and leaves no socket or pidfile', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  t.truthy(d.socket);
  t.true(fs.existsSync(d.socket!));
  t.true(fs.existsSync(path.join(root, 'var/run/sliceid.pid')));
  const started = Date.now();
  const code = await d.stop('SIGTERM');
  t.is(code, 0);
  t.true(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  t.false(fs.existsSync(d.socket!));
  t.false(fs.existsSync(path.join(root, 'var/run/sliceid.pid')));
});

test.serial('SIGHUP and `sliceid refresh` rerun geni-get; file events do not', async (t) => {
  const root = copyTree(path.join(ownFixtures, 'pg-vnode'));
  const log = path.join(root, 'geni-get.calls');
  const real = path.join(root, 'usr/bin/geni-get.real');
  fs.renameSync(path.join(root, 'usr/bin/geni-get'), real);
  fs.writeFileSync(path.join(root, 'usr/bin/geni-get'), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  const d = await startDaemon(root);
  try {
    const calls = (): string[] => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const atStart = calls().length;
    t.true(atStart >= 2);
    // A file event refreshes without asking the testbed.
    let from = d.logs.length;
    fs.appendFileSync(path.join(root, 'var/emulab/boot/tmcc.pcvm7-2/accounts'), `PUBKEY LOGIN=gina KEY="${NEW_KEY}"\n`);
    await d.waitForLog((l) => l.msg === 'refresh', 3000, from);
    t.is(calls().length, atStart);
    from = d.logs.length;
    d.proc.kill('SIGHUP');
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 5000, from);
    t.true(calls().length > atStart);
    const afterHup = calls().length;
    from = d.logs.length;
    const r = await runCli(['refresh', '--root', root]);
    t.is(r.code, 0, r.stderr);
    await d.waitForLog((l) => l.msg === 'refresh' && l['trigger'] === 'SIGHUP', 5000, from);
    t.true(calls().length > afterHup);
  } finally {
    await d.stop();
  }
});

test.serial('idle: with nothing changing, CPU time over 20 s stays under 0.05 s', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const ticks = os_clk_tck();
    const cpu = (): number => {
      const stat = fs.readFileSync(`/proc/${d.proc.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / ticks; // utime + stime
    };
    // Start-up work settles first: V8's memory reducer compacts the heap once, some seconds after
    // start (seen at 5-10 s). Measure from when a 2 s window shows no CPU at all, 12 s in at the earliest.
    const readyAt = Date.now();
    await until(async () => {
      const a = cpu();
      await new Promise((r) => setTimeout(r, 2000));
      return Date.now() - readyAt >= 12000 && cpu() - a === 0;
    }, 60000, 'start-up to settle', 0);
    const before = cpu();
    await new Promise((r) => setTimeout(r, 20000)); // the measurement window itself, not synchronisation
    const used = cpu() - before;
    t.log(`idle CPU over 20 s: ${used.toFixed(3)} s`);
    t.true(used < 0.05, `used ${used} s`);
  } finally {
    await d.stop();
  }
});

function os_clk_tck(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

test.serial('an accounts file caught cut at a line boundary never drops keys; a lasting removal applies after the settle time', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const full = fs.readFileSync(accountsOf(root), 'utf8');
    const expected = keyCount(await getSshKeys(d.port));
    const lines = full.split('\n');
    // Cut after each line in turn (each a well-formed but shorter file), restore quickly.
    for (let cut = 1; cut < lines.length - 1; cut++) {
      const from = d.logs.length;
      fs.writeFileSync(accountsOf(root), `${lines.slice(0, cut).join('\n')}\n`);
      await d.waitForLog((l) => l.msg === 'refresh', 5000, from);
      t.is(keyCount(await getSshKeys(d.port)), expected, `cut after line ${cut}`);
      const back = d.logs.length;
      fs.writeFileSync(accountsOf(root), full);
      await d.waitForLog((l) => l.msg === 'refresh', 5000, back);
    }
    t.is(keyCount(await getSshKeys(d.port)), expected);
    // ben really leaves the slice: once the shorter file has stayed, it is applied.
    const withoutBen = full.split('\n').filter((l) => !/LOGIN=ben/.test(l)).join('\n');
    fs.writeFileSync(accountsOf(root), withoutBen);
    await until(async () => keyCount(await getSshKeys(d.port)) === expected - 1, 10000, "ben's key to go");
    const status = await runCli(['status', '--root', root, '--json']);
    t.is(status.code, 0, status.stdout);
  } finally {
    await d.stop();
  }
});

test.serial('identity files that cannot be written: keys still update, status reports the fault', async (t) => {
  const root = copyTree(pnode);
  const d = await startDaemon(root);
  try {
    const before = keyCount(await getSshKeys(d.port));
    // A directory where the file should be: the atomic rename fails, as on a read-only /etc.
    fs.rmSync(path.join(root, 'etc/slicename'));
    fs.mkdirSync(path.join(root, 'etc/slicename'));
    fs.writeFileSync(path.join(root, 'var/emulab/boot/nickname'), 'node1.radio3.wlab\n');
    fs.appendFileSync(accountsOf(root), `PUBKEY LOGIN=ben KEY="${NEW_KEY}"\n`);
    await until(async () => keyCount(await getSshKeys(d.port)) === before + 1, 15000, 'the new key despite the failing identity write');
    const status = await runCli(['status', '--root', root, '--json']);
    t.is(status.code, 1);
    const report = JSON.parse(status.stdout) as { problems: string[] };
    t.true(report.problems.some((p) => /identity files not updated/.test(p) && /slicename/.test(p)), report.problems.join('\n'));
    // Put it right: the next refresh writes the new identity and the fault clears.
    fs.rmdirSync(path.join(root, 'etc/slicename'));
    d.proc.kill('SIGHUP');
    await until(() => fs.existsSync(path.join(root, 'etc/slicename')) && fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8') === 'wlab_radio3', 15000, 'the slice name to be written');
    const healed = await runCli(['status', '--root', root, '--json']);
    t.deepEqual((JSON.parse(healed.stdout) as { problems: string[] }).problems, []);
  } finally {
    await d.stop();
  }
});

test.serial('temp files of an interrupted write are removed at start', async (t) => {
  const root = copyTree(pnode);
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  const stale = path.join(root, 'etc', '.slice.gid.0123456789ab.tmp');
  fs.writeFileSync(stale, 'half a certificate');
  const d = await startDaemon(root);
  await d.stop();
  t.false(fs.existsSync(stale));
  t.true(fs.existsSync(path.join(root, 'etc/slice.gid')));
});
