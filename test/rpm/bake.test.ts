// Installing the RPM into an image writes nothing node-specific: after `rpm -i` with its scriptlets
// (in a busybox chroot, with a stub chkconfig or systemctl), the image holds the package's payload,
// an empty log file and the rpm database, and nothing else; the state directory is empty, the
// identity files (%ghost) do not exist, and the installed `sliceid clean --dry-run` finds nothing.
// (Kept apart from package.test.ts, whose module registers its own tests when imported.)
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectDir, tempDir } from '../helpers/fixtures.js';

const execFileP = promisify(execFile);

async function must(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { cwd: projectDir, env, maxBuffer: 256 * 1024 * 1024, timeout: 15 * 60_000 });
  return stdout;
}

let rpmFile: string;

test.before(async () => {
  await must('sh', ['packaging/ensure-tools.sh', 'rpm=rpm', 'busybox=busybox-static']);
  const out = await must('npm', ['run', 'rpm', '--silent']);
  rpmFile = path.join(projectDir, out.trim().split('\n').pop()!);
});

/** A minimal image: busybox for the scriptlets' /bin/sh, a stub registering the service. */
async function image(kind: 'sysv' | 'systemd'): Promise<string> {
  const s = tempDir('sliceid-image-');
  for (const d of ['bin', 'sbin', 'usr/bin', 'var/tmp', 'var/log', 'tmp', 'dev', 'etc']) fs.mkdirSync(path.join(s, d), { recursive: true });
  await must('mknod', ['-m', '666', path.join(s, 'dev/null'), 'c', '1', '3']);
  fs.copyFileSync('/bin/busybox', path.join(s, 'bin/busybox'));
  fs.chmodSync(path.join(s, 'bin/busybox'), 0o755);
  await must('chroot', [s, '/bin/busybox', '--install', '-s', '/bin']);
  const stub = kind === 'sysv' ? 'sbin/chkconfig' : 'usr/bin/systemctl';
  fs.writeFileSync(path.join(s, stub), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return s;
}

/** Every path below `root`, relative, directories with a trailing slash. */
function listing(root: string): Set<string> {
  return new Set(
    fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).map((rel) => (fs.lstatSync(path.join(root, rel)).isDirectory() ? `${rel}/` : rel)),
  );
}

for (const kind of ['sysv', 'systemd'] as const) {
  test.serial(`rpm -i on a ${kind} image writes nothing node-specific`, async (t) => {
    const s = await image(kind);
    const before = listing(s);
    await must('rpm', ['--root', s, '--dbpath', '/var/lib/rpm', '--nodeps', '-i', rpmFile]);
    const payload = new Set(
      (await must('rpm', ['--root', s, '--dbpath', '/var/lib/rpm', '-ql', 'sliceid'])).split('\n').filter(Boolean).map((f) => f.slice(1)),
    );
    const added = [...listing(s)].filter((rel) => !before.has(rel)).map((rel) => rel.replace(/\/$/, ''));
    const ghosts = ['etc/slicename', 'etc/slice.gid', 'etc/node.gid', 'var/log/sliceid.log'];
    const extra = added.filter((rel) => !payload.has(rel) || ghosts.includes(rel)).filter((rel) => !/^var\/lib\/rpm(\/|$)/.test(rel));
    // Beyond the payload: directories leading to it, and the empty log file %post creates.
    const parents = new Set([...payload].flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
    t.deepEqual(extra.filter((rel) => !parents.has(rel)), ['var/log/sliceid.log']);
    t.is(fs.statSync(path.join(s, 'var/log/sliceid.log')).size, 0);
    for (const f of ['etc/slicename', 'etc/slice.gid', 'etc/node.gid', 'etc/machine-id', 'var/run/sliceid.pid', 'tmp/nodemanager.api', 'etc/sliceid/authorized_keys']) {
      t.false(fs.existsSync(path.join(s, f)), `${f} not written at install time`);
    }
    const state = path.join(s, 'var/lib/sliceid');
    t.deepEqual(fs.readdirSync(state), [], 'empty state directory');
    t.is(fs.statSync(state).mode & 0o777, 0o700);
    // Nothing in the configuration the package ships holds a key or certificate.
    for (const rel of [...payload].filter((f) => f.startsWith('etc/') && fs.existsSync(path.join(s, f)) && fs.statSync(path.join(s, f)).isFile())) {
      t.notRegex(fs.readFileSync(path.join(s, rel), 'utf8'), /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/, rel);
    }
    // sliceid's own idea of node-specific agrees (the bundled runtime runs from the host).
    const clean = await must(path.join(s, 'usr/bin/sliceid'), ['clean', '--dry-run', '--root', s], { PATH: '/usr/bin:/bin' });
    t.is(clean, 'nothing node-specific to remove\n');
  });
}
