// The slice users' own ~/.ssh/authorized_keys inside a guest (issue 11/24 rules, issue 21): read
// inside the guest (HOMEDIR taken in the guest's root, never the host's), under user-file's checks,
// and followed live.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodePaths } from '../../src/paths.js';
import { silentLogger } from '../../src/log.js';
import { startHostDaemon } from '../../src/host/daemon.js';
import { openGuestRoot } from '../../src/host/guest-fs.js';
import { guestUserFileReader } from '../../src/host/guest-user-file.js';
import { guestTree, startGuest, waitFor } from './helpers.js';

const KEY1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX897pEdvFHAgo3uOhSNWqsw+c0f4U8Fu5ucKX/1zvk fay@laptop';
const KEY2 = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBONke+VqyTZXGSr0+etDsBNojoLa6UaHGuXX0GOtceDzrC3UHdlfDuI6cBMKwjhMpB1ZT0CZBjbCys+LCHPun0M= fay@desk';
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBYmlXywJOOQ4btR4iEdl9KIOqT7sFgGH3W8+aXrhQJ host-root@host';

function home(dir: string, login: string, uid: number, keys?: string): string {
  const h = path.join(dir, 'users', login);
  fs.mkdirSync(path.join(h, '.ssh'), { recursive: true, mode: 0o700 });
  fs.chownSync(h, uid, 7100);
  fs.chownSync(path.join(h, '.ssh'), uid, 7100);
  if (keys !== undefined) {
    fs.writeFileSync(path.join(h, '.ssh/authorized_keys'), keys, { mode: 0o600 });
    fs.chownSync(path.join(h, '.ssh/authorized_keys'), uid, 7100);
  }
  return h;
}

const addUser = (login: string, uid: number): string => `ADDUSER LOGIN=${login} PSWD=* UID=${uid} GID=7100 ROOT=1 NAME="${login}" HOMEDIR=/users/${login} GLIST="" SERIAL=1 EMAIL="x@y" SHELL=bash\n`;

test.serial('a slice user\'s authorized_keys in a guest is read inside the guest, followed live; links to host files reach nothing of the host', async (t) => {
  const dir = guestTree('pg-vnode');
  const acc = path.join(dir, 'var/emulab/boot/tmcc.pcvm7-2/accounts');
  fs.appendFileSync(acc, addUser('fay', 21110) + addUser('hal', 21111) + addUser('ivy', 21112) + addUser('jo', 21113));
  home(dir, 'fay', 21110, `${KEY1}\n`);
  // hal's home is a link to a host directory holding a root-owned authorized_keys (trusted on the host).
  const hostHome = fs.mkdtempSync(path.join(os.tmpdir(), 'host-home-'));
  fs.mkdirSync(path.join(hostHome, '.ssh'));
  fs.writeFileSync(path.join(hostHome, '.ssh/authorized_keys'), `${HOST_KEY}\n`, { mode: 0o600 });
  fs.mkdirSync(path.join(dir, 'users'), { recursive: true });
  fs.symlinkSync(hostHome, path.join(dir, 'users/hal'));
  // ivy's authorized_keys is a link to the host's file; jo's ~/.ssh is a link to the host's .ssh.
  home(dir, 'ivy', 21112);
  fs.symlinkSync(path.join(hostHome, '.ssh/authorized_keys'), path.join(dir, 'users/ivy/.ssh/authorized_keys'));
  const jo = path.join(dir, 'users/jo');
  fs.mkdirSync(jo);
  fs.chownSync(jo, 21113, 7100);
  fs.symlinkSync(path.join(hostHome, '.ssh'), path.join(jo, '.ssh'));
  const g = await startGuest(dir);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
  fs.mkdirSync(path.join(root, 'etc/sliceid'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sliceid/sliceid.toml'), `[host]\nnetns_dir = "/nonexistent-netns"\n\n[[guest]]\nname = "pcvm7-2"\npid = ${g.pid}\n`);
  const daemon = await startHostDaemon({ paths: nodePaths(root), configFile: undefined, logger: silentLogger });
  t.teardown(async () => {
    await daemon.stop('test');
    await g.kill();
  });
  const keysDir = path.join(dir, 'etc/sliceid/authorized_keys');
  t.regex(fs.readFileSync(path.join(keysDir, 'fay'), 'utf8'), /fay@laptop/);
  for (const login of ['hal', 'ivy', 'jo']) t.false(fs.existsSync(path.join(keysDir, login)), login);
  t.false(JSON.stringify(daemon.guests.get('pcvm7-2')!.view.sliceKeys()).includes('host-root'));
  t.true(daemon.watches.watched('pcvm7-2').includes('guest:/users/fay/.ssh'), daemon.watches.watched('pcvm7-2').join(' '));
  // Live: fay adds a key.
  fs.appendFileSync(path.join(dir, 'users/fay/.ssh/authorized_keys'), `${KEY2}\n`);
  await waitFor('fay\'s second key in the guest', () => fs.readFileSync(path.join(keysDir, 'fay'), 'utf8').includes('fay@desk'));
  // A home that appears later (hal's link replaced by a real home): seen from /users.
  fs.rmSync(path.join(dir, 'users/hal'));
  home(dir, 'hal', 21111, `${KEY2.replace('fay@desk', 'hal@desk')}\n`);
  await waitFor('hal\'s key once his home is real', () => fs.existsSync(path.join(keysDir, 'hal')) && fs.readFileSync(path.join(keysDir, 'hal'), 'utf8').includes('hal@desk'));
  t.is(fs.readFileSync(path.join(hostHome, '.ssh/authorized_keys'), 'utf8'), `${HOST_KEY}\n`);
});

test.serial('the guest reader: the checks of user-file, each path taken in the guest', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guest-uf-'));
  const hostHome = fs.mkdtempSync(path.join(os.tmpdir(), 'host-home-'));
  fs.mkdirSync(path.join(hostHome, '.ssh'));
  fs.writeFileSync(path.join(hostHome, '.ssh/authorized_keys'), `${HOST_KEY}\n`, { mode: 0o600 });
  home(dir, 'ok', 5000, `${KEY1}\n`);
  const w = home(dir, 'wr', 5001, `${KEY1}\n`);
  fs.chmodSync(path.join(w, '.ssh/authorized_keys'), 0o666);
  const o = home(dir, 'own', 5002, `${KEY1}\n`);
  fs.chownSync(path.join(o, '.ssh/authorized_keys'), 5099, 0);
  home(dir, 'ln', 5003);
  fs.symlinkSync(path.join(hostHome, '.ssh/authorized_keys'), path.join(dir, 'users/ln/.ssh/authorized_keys'));
  const f = home(dir, 'fifo', 5004);
  (await import('node:child_process')).execFileSync('mkfifo', [path.join(f, '.ssh/authorized_keys')]);
  fs.chownSync(path.join(f, '.ssh/authorized_keys'), 5004, 0);
  fs.symlinkSync(hostHome, path.join(dir, 'users/abs'));
  // A home linked inside the guest (an automounter's way) is fine.
  fs.mkdirSync(path.join(dir, 'home'));
  fs.renameSync(path.join(dir, 'users/ok'), path.join(dir, 'home/ok'));
  fs.symlinkSync('/home/ok', path.join(dir, 'users/ok'));
  const gfs = openGuestRoot(dir);
  t.teardown(() => gfs.close());
  const read = guestUserFileReader('t', () => gfs.openRoot());
  const req = (login: string, uid: number) => ({ home: `/users/${login}`, relative: '.ssh/authorized_keys', uid, maxBytes: 1 << 16, timeoutMs: 5000 });
  const ok = await read(req('ok', 5000));
  t.is(ok.kind, 'data');
  t.is(ok.kind === 'data' ? ok.data.toString() : '', `${KEY1}\n`);
  const rule = async (login: string, uid: number): Promise<string> => {
    const r = await read(req(login, uid));
    return r.kind === 'refused' ? r.rule : r.kind === 'missing' ? `missing${r.home ? ' home' : ''}` : r.kind;
  };
  t.is(await rule('wr', 5001), 'file-writable');
  t.is(await rule('own', 5002), 'file-owner');
  t.is(await rule('ln', 5003), 'file-symlink');
  t.is(await rule('fifo', 5004), 'file-not-regular');
  t.is(await rule('abs', 0), 'missing home', 'a home linked to a host directory is taken in the guest, where it is not');
  t.is(await rule('nobody', 5005), 'missing home');
  t.is(await rule('ok', 5099), 'dir-owner');
  // No descriptor left open.
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  for (let i = 0; i < 50; i++) await read(req('ok', 5000));
  t.true(fs.readdirSync('/proc/self/fd').length <= fdsBefore);
});
