import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openGuestRoot, GuestPathError } from '../../src/host/guest-fs.js';

function tree(): { host: string; guest: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'guestfs-'));
  const host = path.join(base, 'host');
  const guest = path.join(base, 'guest');
  fs.mkdirSync(path.join(host, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(host, 'etc', 'secret'), 'host secret\n');
  fs.writeFileSync(path.join(host, 'etc', 'slicename'), 'host-own\n');
  fs.mkdirSync(path.join(guest, 'var/emulab/boot/tmcc'), { recursive: true });
  fs.writeFileSync(path.join(guest, 'var/emulab/boot/nickname'), 'node1.exp.proj\n');
  return { host, guest };
}

test('an absolute symlink in the guest resolves inside the guest, for reading and writing', (t) => {
  const { host, guest } = tree();
  // /etc -> the host's etc (absolute, as the guest's root would make it)
  fs.symlinkSync(path.join(host, 'etc'), path.join(guest, 'etc'));
  // accounts -> a host file
  fs.symlinkSync(path.join(host, 'etc', 'secret'), path.join(guest, 'var/emulab/boot/tmcc/accounts'));
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  t.is(g.read('/var/emulab/boot/tmcc/accounts'), undefined, 'the link names a path that does not exist in the guest');
  t.is(g.read('/etc/secret'), undefined);
  g.write('/etc/slicename', 'guest\n', 0o644);
  t.is(fs.readFileSync(path.join(host, 'etc', 'slicename'), 'utf8'), 'host-own\n', 'the host file is untouched');
  // The write landed in the guest's own tree, at the link target taken inside the guest.
  t.is(fs.readFileSync(path.join(guest, host, 'etc', 'slicename'), 'utf8'), 'guest\n');
  t.deepEqual(fs.readdirSync(path.join(host, 'etc')).sort(), ['secret', 'slicename']);
});

test('.. and relative links never climb above the guest root', (t) => {
  const { host, guest } = tree();
  fs.mkdirSync(path.join(guest, 'etc'));
  const depth = guest.split('/').length;
  fs.symlinkSync('../'.repeat(depth + 2) + path.join(host, 'etc').slice(1), path.join(guest, 'etc', 'up'));
  fs.symlinkSync('../../../../../../../../' + path.join(host, 'etc/secret').slice(1), path.join(guest, 'etc', 'file'));
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  t.is(g.read('/etc/up/secret'), undefined);
  t.is(g.read('/etc/file'), undefined);
  t.is(g.read('/../../../../' + path.join(host, 'etc/secret')), undefined);
  g.write('/etc/up/slicename', 'x', 0o644);
  t.is(fs.readFileSync(path.join(host, 'etc', 'slicename'), 'utf8'), 'host-own\n');
  // Links that stay inside work as in the guest.
  fs.symlinkSync('/var/emulab/boot', path.join(guest, 'etc', 'boot'));
  t.is(g.read('/etc/boot/nickname')?.toString(), 'node1.exp.proj\n');
});

test('FIFOs, devices and huge files are refused without blocking', (t) => {
  const { guest } = tree();
  execFileSync('mkfifo', [path.join(guest, 'var/emulab/boot/nodeid')]);
  fs.symlinkSync('/dev/zero', path.join(guest, 'var/emulab/boot/creator'));
  fs.mkdirSync(path.join(guest, 'dev'));
  fs.writeFileSync(path.join(guest, 'var/emulab/boot/swapper'), Buffer.alloc(2 << 20));
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  t.throws(() => g.read('/var/emulab/boot/nodeid'), { instanceOf: GuestPathError, message: /FIFO/ });
  t.is(g.read('/var/emulab/boot/creator'), undefined, '/dev/zero of the guest does not exist');
  t.throws(() => g.read('/var/emulab/boot/swapper'), { instanceOf: GuestPathError, message: /bytes/ });
});

test('writes are atomic and a directory in the way is an error, not a crash', (t) => {
  const { guest } = tree();
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  t.true(g.write('/etc/sliceid/authorized_keys/alice', 'ssh-ed25519 AAAA\n', 0o644));
  t.false(g.write('/etc/sliceid/authorized_keys/alice', 'ssh-ed25519 AAAA\n', 0o644));
  t.deepEqual(g.list('/etc/sliceid/authorized_keys'), ['alice']);
  fs.mkdirSync(path.join(guest, 'etc/slice.gid'));
  t.throws(() => g.write('/etc/slice.gid', 'x', 0o644), { instanceOf: GuestPathError });
  t.deepEqual(fs.readdirSync(path.join(guest, 'etc')).sort(), ['slice.gid', 'sliceid']);
  t.true(g.unlink('/etc/sliceid/authorized_keys/alice'));
});

test('a directory that is a symlink is listed through the guest\'s own root (a link to a host directory lists nothing of the host)', (t) => {
  const { host, guest } = tree();
  fs.symlinkSync(path.join(host, 'etc'), path.join(guest, 'var/emulab/boot/tmcc.evil'));
  fs.mkdirSync(path.join(guest, 'var/emulab/real'));
  fs.writeFileSync(path.join(guest, 'var/emulab/real/nodeid'), 'pc1\n');
  fs.symlinkSync('../real', path.join(guest, 'var/emulab/boot/tmcc.rel'));
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  t.deepEqual(g.list('/var/emulab/boot/tmcc.evil'), [], 'the host directory is not listed (it is not in the guest)');
  t.deepEqual(g.list('/var/emulab/boot/tmcc.rel'), ['nodeid']);
  fs.mkdirSync(path.join(guest, host, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(guest, host, 'etc', 'inguest'), 'x');
  t.deepEqual(g.list('/var/emulab/boot/tmcc.evil'), ['inguest']);
});

test('a read holds a buffer the size of the file, not of the read bound; a file larger than its stat grows the buffer up to the bound', (t) => {
  const { guest } = tree();
  const g = openGuestRoot(guest);
  t.teardown(() => g.close());
  const small = g.read('/var/emulab/boot/nickname')!;
  t.is(small.toString(), 'node1.exp.proj\n');
  // Before: every read kept a 1 MiB + 1 buffer alive (50 guests: +30 MB of glibc heap per refresh).
  t.true(small.buffer.byteLength <= 16 * 1024, `${small.buffer.byteLength} bytes behind a ${small.length}-byte read`);
  const big = Buffer.alloc(300_000, 0x61);
  fs.writeFileSync(path.join(guest, 'var/emulab/boot/big'), big);
  t.true(g.read('/var/emulab/boot/big')!.equals(big));
  // procfs files stat as 0 bytes and have content: read whole by growing the buffer.
  const root = openGuestRoot('/');
  t.teardown(() => root.close());
  t.regex(root.read('/proc/self/status')!.toString(), /^Name:[\s\S]*\nPid:\t\d+\n/);
  t.throws(() => root.read('/proc/self/status', 10), { instanceOf: GuestPathError, message: /more than the 10 bytes/ });
});
