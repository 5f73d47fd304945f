// npm start's hint does what it says: the ssh-rsa line shows up in GetSSHKeys, the ssh-ed25519
// line does not, and `sliceid authorized-keys ben` (sshd's view) lists it.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { projectDir } from '../helpers/fixtures.js';
import { getSshKeys, until } from '../helpers/daemon.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

test('the hint: an ssh-rsa key for GetSSHKeys, the ed25519 key to sshd (authorized-keys)', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(projectDir, 'dist/examples/start.js')], { cwd: projectDir, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await until(() => out.includes('Press Ctrl-C'), 60_000, 'the hint');
  const hint = out.slice(out.indexOf('Try, in another terminal'));
  const commands = hint.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('echo ') || l.includes(' authorized-keys '));
  const rsa = commands.find((l) => l.includes('ssh-rsa '))!;
  const ed = commands.find((l) => l.includes('ssh-ed25519 '))!;
  const ak = commands.find((l) => l.includes(' authorized-keys '))!;
  t.truthy(rsa && ed && ak, hint);
  t.regex(hint, /GetSSHKeys[^\n]*\n[^\n]*lists it/);
  t.regex(hint, /ssh-ed25519 key goes to sshd only/);
  const key = (line: string): string => /KEY="([^"]+)"/.exec(line)![1]!;
  const before = Object.values(await getSshKeys(port))[0]!;
  t.false(before.includes(key(rsa)));
  execFileSync('sh', ['-c', rsa]);
  await until(async () => Object.values(await getSshKeys(port))[0]!.includes(key(rsa)), 30_000, 'the ssh-rsa key in GetSSHKeys');
  execFileSync('sh', ['-c', ed]);
  const keys = await until(() => {
    const printed = execFileSync('sh', ['-c', ak], { cwd: projectDir }).toString();
    return printed.includes(key(ed)) ? printed : '';
  }, 30_000, 'the ed25519 key for sshd');
  t.true(keys.includes(key(rsa)));
  t.false(Object.values(await getSshKeys(port))[0]!.includes(key(ed)), 'GetSSHKeys does not list the ed25519 key');
});
