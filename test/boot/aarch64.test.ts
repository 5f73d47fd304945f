// The aarch64 packages (SLICEID_ARCH=aarch64: the RPM and the arm64 .deb, cross-built from the
// same staged tree) installed into scratch roots (copies of a fixture node tree) and run under
// qemu-user: `once` writes the identity files, `run` answers Python's xmlrpc.client GetSSHKeys
// over TCP and the Unix socket.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { copyTree, goodTrees, projectDir, tempDir, type FixtureTree } from '../helpers/fixtures.js';
import { GETSSHKEYS_PY } from '../helpers/py-client.js';
import { startInstalledRun } from '../helpers/installed.js';
import { must, run } from './container.js';

const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { version: string };
const fixture: FixtureTree = goodTrees().find((t) => t.label === 'own/emulab-pnode')!;
const SYSROOT = '/usr/aarch64-linux-gnu';

let rpm: string;
let deb: string;

test.before(async () => {
  await must('sh', ['packaging/ensure-tools.sh', 'qemu-aarch64=qemu-user', 'rpm=rpm', 'dpkg-deb=dpkg', 'python3=python3', 'aarch64-linux-gnu-g++=g++-aarch64-linux-gnu'], { cwd: projectDir });
  const env = { ...process.env, SLICEID_ARCH: 'aarch64', SLICEID_SKIP_BUILD: '1' };
  const t0 = Date.now();
  const prebuilt = process.env['SLICEID_BOOT_PREBUILT'] === '1';
  deb = prebuilt
    ? path.join(projectDir, `dist/sliceid_${pkg.version}-1_arm64.deb`)
    : path.join(projectDir, (await must('sh', ['packaging/build-deb.sh'], { cwd: projectDir, env, timeoutMs: 20 * 60_000 })).trim().split('\n').pop()!);
  const t1 = Date.now();
  rpm = prebuilt
    ? path.join(projectDir, `dist/sliceid-${pkg.version}-1.aarch64.rpm`)
    : path.join(projectDir, (await must('sh', ['packaging/build-rpm.sh'], { cwd: projectDir, env, timeoutMs: 20 * 60_000 })).trim().split('\n').pop()!);
  console.log(`aarch64 builds: .deb ${((t1 - t0) / 1000).toFixed(0)} s, RPM ${((Date.now() - t1) / 1000).toFixed(0)} s`);
});

/** SLICEID_NODE for an installed tree: its arm64 runtime under qemu-user with Debian's aarch64 libraries. */
function qemuNode(root: string): string {
  const file = path.join(tempDir('sliceid-qemu-'), 'node');
  fs.writeFileSync(file, `#!/bin/sh\nexec qemu-aarch64 -L ${SYSROOT} ${root}/usr/lib/sliceid/runtime/bin/node "$@"\n`, { mode: 0o755 });
  return file;
}

async function exercise(t: import('ava').ExecutionContext, root: string): Promise<void> {
  const node = path.join(root, 'usr/lib/sliceid/runtime/bin/node');
  t.regex(await must('readelf', ['-h', node]), /Machine:\s+AArch64/);
  t.regex(await must('readelf', ['-h', path.join(root, 'usr/lib/sliceid/node_modules/better-sqlite3/build/Release/better_sqlite3.node')]), /Machine:\s+AArch64/);
  const env = { PATH: '/usr/bin:/bin', SLICEID_NODE: qemuNode(root) };
  const bin = path.join(root, 'usr/bin/sliceid');

  const once = await run(bin, ['once', '--root', root, '--json'], { env, timeoutMs: 300_000 });
  t.is(once.code, 0, once.stderr);
  t.is(fs.readFileSync(path.join(root, 'etc/slicename'), 'utf8'), fixture.expected.slicename);
  for (const gid of ['etc/slice.gid', 'etc/node.gid']) t.regex(fs.readFileSync(path.join(root, gid), 'utf8'), /^-----BEGIN CERTIFICATE-----/);

  const { proc, ready, exited } = await startInstalledRun(bin, root, env, 300_000);
  t.is(ready['socket'], path.join(root, 'tmp/nodemanager.api'));
  const keys = JSON.parse(await must('python3', ['-c', GETSSHKEYS_PY, String(ready['port']), String(ready['socket'])], { timeoutMs: 120_000 })) as { tcp: unknown; unix: unknown };
  t.deepEqual(keys.tcp, keys.unix);
  // What `sliceid keys` says from the cache the daemon filled (type filtering may vary).
  const cli = await must(bin, ['keys', '--root', root, '--json'], { env, timeoutMs: 300_000 });
  t.deepEqual(keys.tcp, JSON.parse(cli));
  const served = (keys.tcp as Record<string, string>)[fixture.expected.slicename]?.split('\n') ?? [];
  const all = Object.values(fixture.expected.users).flat();
  t.true(served.length > 0 && served.every((k) => all.includes(k)), 'the fixture users keys');
  proc.kill('SIGTERM');
  t.is(await exited, 0);
  // The stopped daemon leaves its root-owned socket in place, so the path is never free for
  // another server (README, Security model); nothing answers there.
  t.true(fs.lstatSync(path.join(root, 'tmp/nodemanager.api')).isSocket(), 'socket file kept');
}

test.serial('aarch64 RPM: installed into a scratch root, once and run under qemu-user', async (t) => {
  t.is(path.basename(rpm), `sliceid-${pkg.version}-1.aarch64.rpm`);
  t.is((await must('rpm', ['-qp', '--qf', '%{ARCH}', rpm])).trim(), 'aarch64');
  const requires = await must('rpm', ['-qpR', rpm]);
  const glibc = [...requires.matchAll(/GLIBC_([\d.]+)/g)].map((m) => m[1]!).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  t.is(glibc.at(-1), '2.28', 'glibc floor of the aarch64 package');
  t.log(`${path.basename(rpm)}: ${(fs.statSync(rpm).size / 1048576).toFixed(1)} MiB`);
  const root = copyTree(fixture.source);
  await must('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '-i', '--nodeps', '--noscripts', '--ignorearch', rpm]);
  await exercise(t, root);
});

test.serial('arm64 .deb: unpacked into a scratch root, once and run under qemu-user', async (t) => {
  t.is(path.basename(deb), `sliceid_${pkg.version}-1_arm64.deb`);
  t.is((await must('dpkg-deb', ['-f', deb, 'Architecture'])).trim(), 'arm64');
  t.regex(await must('dpkg-deb', ['-f', deb, 'Depends']), /libc6 \(>= 2\.28\)/);
  t.log(`${path.basename(deb)}: ${(fs.statSync(deb).size / 1048576).toFixed(1)} MiB`);
  const root = copyTree(fixture.source);
  await must('dpkg-deb', ['-x', deb, root]);
  await exercise(t, root);
});
