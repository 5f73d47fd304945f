import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodePaths } from '../../src/paths.js';
import { classify, parseSshdT, sshdState } from '../../src/sshd/effective.js';
import { tempDir } from '../helpers/fixtures.js';

const paths = nodePaths('/');
const T = (file: string, command = 'none'): string =>
  `port 22\nauthorizedkeyscommand ${command}\nauthorizedkeyscommanduser root\nauthorizedkeysfile ${file}\nstrictmodes yes\n`;

test('sshd -T output: the files, the command, both, neither', (t) => {
  t.deepEqual(parseSshdT(T('.ssh/authorized_keys /etc/sliceid/authorized_keys/%u')), {
    authorizedKeysFile: ['.ssh/authorized_keys', '/etc/sliceid/authorized_keys/%u'],
    authorizedKeysCommand: undefined,
  });
  const files = classify(paths, parseSshdT(T('.ssh/authorized_keys /etc/sliceid/authorized_keys/%u')));
  t.is(files.uses, 'files');
  t.is(files.problem, undefined);
  const command = classify(paths, parseSshdT(T('.ssh/authorized_keys', '/usr/bin/sliceid authorized-keys %u')));
  t.is(command.uses, 'command');
  t.is(command.problem, undefined);
  t.regex(command.detail, /a Node process per login attempt/);
  t.is(classify(paths, parseSshdT(T('/etc/sliceid/authorized_keys/%u', '/usr/bin/sliceid authorized-keys %u'))).uses, 'files and command');
  // The executable the package installs for sshd (packaging/authorized-keys-command.sh) is the command too.
  t.is(classify(paths, parseSshdT(T('.ssh/authorized_keys', '/usr/lib/sliceid/libexec/authorized-keys %u'))).uses, 'command');
  const neither = classify(paths, parseSshdT(T('.ssh/authorized_keys .ssh/authorized_keys2', '/usr/bin/other-tool %u')));
  t.is(neither.uses, 'neither');
  t.regex(neither.problem ?? '', /AuthorizedKeysFile \.ssh\/authorized_keys \/etc\/sliceid\/authorized_keys\/%u/);
  // Another directory, or another token than %u, is not sliceid's files.
  t.is(classify(paths, parseSshdT(T('/etc/sliceid/authorized_keys/%U'))).uses, 'neither');
  t.is(classify(paths, parseSshdT(T('/etc/other/%u'))).uses, 'neither');
});

test('no sshd under the root: said, not a problem', async (t) => {
  const s = await sshdState(nodePaths(tempDir()));
  t.is(s.uses, 'no sshd');
  t.is(s.problem, undefined);
});

test("the real sshd -T on a node tree's sshd_config", async (t) => {
  const p = nodePaths(tempDir());
  fs.mkdirSync(path.join(p.root, 'usr/sbin'), { recursive: true });
  fs.symlinkSync('/usr/sbin/sshd', path.join(p.root, 'usr/sbin/sshd'));
  fs.mkdirSync(path.join(p.root, 'etc/ssh'), { recursive: true });
  const hostKey = path.join(p.root, 'etc/ssh/host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const config = path.join(p.root, 'etc/ssh/sshd_config');
  fs.writeFileSync(config, `HostKey ${hostKey}\nAuthorizedKeysFile .ssh/authorized_keys ${p.sshdKeysDir}/%u\n`);
  const files = await sshdState(p);
  t.is(files.uses, 'files', files.detail);
  fs.writeFileSync(config, `HostKey ${hostKey}\nAuthorizedKeysCommand /usr/bin/sliceid authorized-keys %u\nAuthorizedKeysCommandUser root\n`);
  t.is((await sshdState(p)).uses, 'command');
  fs.writeFileSync(config, `HostKey ${hostKey}\n`);
  t.truthy((await sshdState(p)).problem);
  fs.writeFileSync(config, `HostKey ${hostKey}\nNoSuchOption yes\n`);
  const bad = await sshdState(p);
  t.is(bad.uses, 'unknown');
  t.regex(bad.detail, /-T failed/);
  t.is(bad.problem, undefined);
});
