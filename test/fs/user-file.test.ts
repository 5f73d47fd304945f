import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readUserFile, type UserFileRequest } from '../../src/fs/user-file.js';
import { tempDir } from '../helpers/fixtures.js';

// The checks are about owners: these tests run as root (as CI does) to make files of other uids.
// The deadline test keeps libuv's threads busy: it is serial (ava runs those before the others).
const USER = 54321;
const OTHER = 54322;
const REL = '.ssh/authorized_keys';

function home(): { home: string; file: string; req: UserFileRequest } {
  const dir = path.join(tempDir(), 'home');
  fs.mkdirSync(path.join(dir, '.ssh'), { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, '.ssh'), 0o700);
  const file = path.join(dir, REL);
  fs.writeFileSync(file, 'ssh-ed25519 AAAA x\n', { mode: 0o600 });
  for (const p of [dir, path.join(dir, '.ssh'), file]) fs.chownSync(p, USER, USER);
  return { home: dir, file, req: { home: dir, relative: REL, uid: USER, maxBytes: 1024, timeoutMs: 2000 } };
}

test('a file of the user, in directories of the user, is read', async (t) => {
  const h = home();
  const r = await readUserFile(h.req);
  t.is(r.kind, 'data');
  if (r.kind === 'data') t.is(r.data.toString(), 'ssh-ed25519 AAAA x\n');
  // root-owned directories and file are fine too (sshd's rule: the user or root).
  for (const p of [h.home, path.dirname(h.file), h.file]) fs.chownSync(p, 0, 0);
  t.is((await readUserFile(h.req)).kind, 'data');
});

test('missing home, .ssh or file, and an empty file, are missing (not refused)', async (t) => {
  const h = home();
  fs.writeFileSync(h.file, '');
  t.like(await readUserFile(h.req), { kind: 'missing', reason: `${h.file} is empty` });
  fs.rmSync(h.file);
  t.is((await readUserFile(h.req)).kind, 'missing');
  fs.rmSync(path.dirname(h.file), { recursive: true });
  t.is((await readUserFile(h.req)).kind, 'missing');
  t.is((await readUserFile({ ...h.req, home: path.join(h.home, 'nope') })).kind, 'missing');
});

test('each rule refuses by name', async (t) => {
  const refused = async (req: UserFileRequest, rule: string, label: string): Promise<void> => {
    const r = await readUserFile(req);
    t.like(r, { kind: 'refused', rule }, label);
  };
  // The file a symlink (to a root-only file).
  let h = home();
  const secret = path.join(path.dirname(h.home), 'secret.key');
  fs.writeFileSync(secret, 'PRIVATE\n', { mode: 0o600 });
  fs.rmSync(h.file);
  fs.symlinkSync(secret, h.file);
  await refused(h.req, 'file-symlink', 'symlinked file');
  // .ssh a symlink to a root directory.
  h = home();
  fs.rmSync(path.dirname(h.file), { recursive: true });
  fs.mkdirSync(path.join(path.dirname(h.home), 'rootssh'));
  fs.copyFileSync(secret, path.join(path.dirname(h.home), 'rootssh', 'authorized_keys'));
  fs.symlinkSync(path.join(path.dirname(h.home), 'rootssh'), path.dirname(h.file));
  await refused(h.req, 'dir-symlink', 'symlinked .ssh');
  // Modes.
  h = home();
  fs.chmodSync(h.file, 0o620);
  await refused(h.req, 'file-writable', 'group-writable file');
  fs.chmodSync(h.file, 0o600);
  fs.chmodSync(path.dirname(h.file), 0o702);
  await refused(h.req, 'dir-writable', 'world-writable .ssh');
  fs.chmodSync(path.dirname(h.file), 0o700);
  fs.chmodSync(h.home, 0o775);
  await refused(h.req, 'dir-writable', 'group-writable home');
  fs.chmodSync(h.home, 0o755);
  // Owners.
  fs.chownSync(h.file, OTHER, OTHER);
  await refused(h.req, 'file-owner', 'file of another user');
  fs.chownSync(h.file, USER, USER);
  fs.chownSync(path.dirname(h.file), OTHER, OTHER);
  await refused(h.req, 'dir-owner', '.ssh of another user');
  fs.chownSync(path.dirname(h.file), USER, USER);
  fs.chownSync(h.home, OTHER, OTHER);
  await refused(h.req, 'dir-owner', 'home of another user');
  fs.chownSync(h.home, USER, USER);
  // A hard link to a root-owned file.
  fs.rmSync(h.file);
  fs.linkSync(secret, h.file);
  await refused(h.req, 'file-hard-link', 'hard link to a root file');
  // Size.
  fs.rmSync(h.file);
  fs.writeFileSync(h.file, 'x'.repeat(1025));
  fs.chownSync(h.file, USER, USER);
  await refused(h.req, 'file-too-large', 'too large');
  // Not a regular file: directory, FIFO, socket.
  fs.rmSync(h.file);
  fs.mkdirSync(h.file);
  await refused(h.req, 'file-not-regular', 'directory');
  fs.rmSync(h.file, { recursive: true });
  execFileSync('mkfifo', [h.file]);
  const started = performance.now();
  await refused(h.req, 'file-not-regular', 'FIFO nobody writes');
  t.true(performance.now() - started < 1000, 'a FIFO never blocks');
  fs.rmSync(h.file);
  const server = net.createServer().listen(h.file);
  await new Promise((resolve) => server.once('listening', resolve));
  await refused(h.req, 'file-not-regular', 'socket');
  await new Promise((resolve) => server.close(resolve));
  // .ssh is a file.
  fs.rmSync(path.dirname(h.file), { recursive: true, force: true });
  fs.writeFileSync(path.dirname(h.file), 'x');
  await refused(h.req, 'dir-not-directory', '.ssh a file');
  // Home is a file.
  await refused({ ...h.req, home: secret }, 'home-not-directory', 'home a file');
});

test('a symlinked home (an automounter) is judged by where it leads', async (t) => {
  const h = home();
  const link = path.join(path.dirname(h.home), 'link');
  fs.symlinkSync(h.home, link);
  const r = await readUserFile({ ...h.req, home: link });
  t.is(r.kind, 'data');
  fs.chmodSync(h.home, 0o777);
  t.like(await readUserFile({ ...h.req, home: link }), { kind: 'refused', rule: 'dir-writable' });
});

test('refusal reasons name the path and rule, never the content', async (t) => {
  const h = home();
  fs.writeFileSync(h.file, 'TOPSECRETCONTENT'.repeat(100));
  const r = await readUserFile(h.req);
  t.is(r.kind, 'refused');
  if (r.kind === 'refused') {
    t.false(r.reason.includes('TOPSECRET'));
    t.true(r.reason.startsWith(h.file));
  }
});

test.serial('a read that does not finish in time is refused, and not asked again until it ends', async (t) => {
  const h = home();
  // Keep libuv's threads busy (as a hung NFS server would keep the read): the read cannot finish.
  const busy = Array.from({ length: 8 }, () => new Promise((resolve) => crypto.pbkdf2('x', 'y', 400_000, 32, 'sha256', resolve)));
  const late = await readUserFile({ ...h.req, timeoutMs: 20 });
  t.like(late, { kind: 'refused', rule: 'read-timeout' });
  t.regex((late as { reason: string }).reason, /not read within 20 ms/);
  const again = await readUserFile(h.req);
  t.like(again, { kind: 'refused', rule: 'read-timeout' });
  t.regex((again as { reason: string }).reason, /earlier read has not finished/);
  await Promise.all(busy);
  // Once the stuck read has ended, the file is read again.
  let r = await readUserFile(h.req);
  for (let i = 0; i < 250 && r.kind !== 'data'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    r = await readUserFile(h.req);
  }
  t.is(r.kind, 'data');
});
