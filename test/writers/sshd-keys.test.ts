import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { nodePaths, type NodePaths } from '../../src/paths.js';
import { UnsafePathError, forgetSshdKeys, keyFileContent, writeSshdKeys } from '../../src/writers/sshd-keys.js';
import { tempDir } from '../helpers/fixtures.js';

const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX897pEdvFHAgo3uOhSNWqsw+c0f4U8Fu5ucKX/1zvk ada@laptop';
const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC0 ada@desk';
const ECDSA = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= ben';

const mode = (p: string): number => fs.statSync(p).mode & 0o7777;
const file = (paths: NodePaths, login: string): string => path.join(paths.sshdKeysDir, login);

function fresh(): NodePaths {
  const paths = nodePaths(tempDir());
  forgetSshdKeys(paths);
  return paths;
}

test('one 0644 file per user with keys, every key type, in 0755 directories', async (t) => {
  const paths = fresh();
  const out = await writeSshdKeys(paths, [
    { login: 'ada', keys: [ED, RSA] },
    { login: 'ben', keys: [ECDSA] },
    { login: 'cy', keys: [] },
  ]);
  t.deepEqual(out, { written: ['ada', 'ben'], removed: [], problems: [] });
  t.is(fs.readFileSync(file(paths, 'ada'), 'utf8'), `${ED}\n${RSA}\n`);
  t.is(fs.readFileSync(file(paths, 'ben'), 'utf8'), `${ECDSA}\n`);
  t.false(fs.existsSync(file(paths, 'cy')));
  t.deepEqual(fs.readdirSync(paths.sshdKeysDir).sort(), ['ada', 'ben']);
  t.is(mode(file(paths, 'ada')), 0o644);
  t.is(mode(paths.sshdKeysDir), 0o755);
  t.is(mode(path.dirname(paths.sshdKeysDir)), 0o755);
  t.is(keyFileContent([]), '');
});

test('unchanged files are not rewritten; a change rewrites only that user; a user gone loses the file', async (t) => {
  const paths = fresh();
  await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }, { login: 'ben', keys: [ECDSA] }]);
  const inode = fs.statSync(file(paths, 'ada')).ino;
  t.deepEqual(await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }, { login: 'ben', keys: [ECDSA] }]), { written: [], removed: [], problems: [] });
  // A restart (nothing remembered) reads the files and still finds nothing to do.
  forgetSshdKeys(paths);
  t.deepEqual(await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }, { login: 'ben', keys: [ECDSA] }]), { written: [], removed: [], problems: [] });
  t.is(fs.statSync(file(paths, 'ada')).ino, inode);
  t.deepEqual((await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }, { login: 'ben', keys: [ECDSA, RSA] }])).written, ['ben']);
  t.is(fs.statSync(file(paths, 'ada')).ino, inode);
  const out = await writeSshdKeys(paths, [{ login: 'ben', keys: [ECDSA, RSA] }]);
  t.deepEqual(out.removed, ['ada']);
  t.false(fs.existsSync(file(paths, 'ada')));
});

test('a file changed or removed behind the writer is put back (directory change, or a full refresh)', async (t) => {
  const paths = fresh();
  const users = [{ login: 'ada', keys: [ED] }, { login: 'ben', keys: [ECDSA] }];
  await writeSshdKeys(paths, users);
  fs.rmSync(file(paths, 'ada'));
  t.deepEqual((await writeSshdKeys(paths, users)).written, ['ada']);
  // Edited in place (the directory does not change): a full refresh reads every file.
  fs.writeFileSync(file(paths, 'ben'), 'ssh-ed25519 AAAA intruder\n');
  t.deepEqual((await writeSshdKeys(paths, users, true)).written, ['ben']);
  t.is(fs.readFileSync(file(paths, 'ben'), 'utf8'), `${ECDSA}\n`);
  // A file with the right content but a mode sshd refuses is rewritten too.
  fs.chmodSync(file(paths, 'ben'), 0o666);
  t.deepEqual((await writeSshdKeys(paths, users, true)).written, ['ben']);
  t.is(mode(file(paths, 'ben')), 0o644);
});

test('names that are not logins never become files; foreign entries are left alone; stale temp files go', async (t) => {
  const paths = fresh();
  fs.mkdirSync(paths.sshdKeysDir, { recursive: true });
  fs.writeFileSync(path.join(paths.sshdKeysDir, 'README.txt'), 'operator notes\n');
  fs.writeFileSync(path.join(paths.sshdKeysDir, '.ada.0123456789ab.tmp'), 'half');
  const out = await writeSshdKeys(paths, [
    { login: '../../etc/passwd', keys: [ED] },
    { login: '..', keys: [ED] },
    { login: 'a/b', keys: [ED] },
    { login: 'ada', keys: [ED] },
  ]);
  t.deepEqual(out.written, ['ada']);
  t.is(out.problems.length, 3);
  t.regex(out.problems[0]!, /not a valid login/);
  t.deepEqual(fs.readdirSync(paths.sshdKeysDir).sort(), ['README.txt', 'ada']);
  t.false(fs.existsSync(path.join(paths.root, 'etc/passwd')));
});

test('modes of its own directories are fixed; an unsafe directory above them is refused, nothing written', async (t) => {
  const paths = fresh();
  fs.mkdirSync(paths.sshdKeysDir, { recursive: true });
  fs.chmodSync(paths.sshdKeysDir, 0o777);
  fs.chmodSync(path.dirname(paths.sshdKeysDir), 0o770);
  await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }]);
  t.is(mode(paths.sshdKeysDir), 0o755);
  t.is(mode(path.dirname(paths.sshdKeysDir)), 0o755);

  const other = fresh();
  fs.mkdirSync(path.join(other.root, 'etc'), { mode: 0o775 });
  fs.chmodSync(path.join(other.root, 'etc'), 0o775);
  const err = await t.throwsAsync(() => writeSshdKeys(other, [{ login: 'ada', keys: [ED] }]), { instanceOf: UnsafePathError });
  t.regex(err!.message, /\/etc is writable by group or others \(mode 0775/);
  t.false(fs.existsSync(other.sshdKeysDir));
});

test('a symbolic link in place of its directory is refused', async (t) => {
  const paths = fresh();
  const elsewhere = tempDir();
  fs.mkdirSync(path.join(paths.root, 'etc/sliceid'), { recursive: true });
  fs.symlinkSync(elsewhere, paths.sshdKeysDir);
  await t.throwsAsync(() => writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }]), { instanceOf: UnsafePathError, message: /symbolic link/ });
  t.deepEqual(fs.readdirSync(elsewhere), []);
});

test('a directory where a user file should be is replaced by the file', async (t) => {
  const paths = fresh();
  fs.mkdirSync(file(paths, 'ada'), { recursive: true });
  fs.mkdirSync(file(paths, 'old'), { recursive: true });
  const out = await writeSshdKeys(paths, [{ login: 'ada', keys: [ED] }]);
  t.deepEqual(out, { written: ['ada'], removed: ['old'], problems: [] });
  t.is(fs.readFileSync(file(paths, 'ada'), 'utf8'), `${ED}\n`);
});

test('a large first pass yields to the event loop between files and still writes every user', async (t) => {
  const paths = fresh();
  const users = Array.from({ length: 1200 }, (_, i) => ({ login: `u${i}`, keys: [ED] }));
  let turns = 0;
  let writing = true;
  const tick = (): void => {
    turns++;
    if (writing) setImmediate(tick);
  };
  setImmediate(tick);
  const out = await writeSshdKeys(paths, users);
  writing = false;
  t.is(out.written.length, 1200);
  t.is(fs.readdirSync(paths.sshdKeysDir).length, 1200);
  // The event loop turned during the pass (a synchronous pass would leave one turn at most).
  t.true(turns >= 3, `${turns} turns`);
});
