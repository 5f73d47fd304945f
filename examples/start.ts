// npm start: run the sliceid daemon on the bundled example node tree (examples/emulab-node),
// copied into a temp root, on an unprivileged port, and print how to query it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const project = path.resolve(here, '..', '..');
const tree = path.join(project, 'examples', 'emulab-node');
const cli = path.join(project, 'dist', 'src', 'cli.js');
const port = process.env['PORT'] ?? '8812';
// The hint's keys: an ssh-rsa key (GetSSHKeys lists it) and an ssh-ed25519 one (sshd only).
const RSA_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQClm4ghGJSqglaqWACNlE+jx35lCVUbbuQNrJr0m+XHovVOlQxx1KtT44AQ1+szeBl620F5Ed+pnNgL0e9b0RtiDxAzEzySMa2IvBBM63uOYa9K5Mz3sJIfIPXbhdnrOiJ5TSnHkCVs14u3IlngrZxk375BvUvRwaRhaBblS37It+PgOkPVPB0s+fvZgWN32XNaB6dfZ8pToVCNKRU8njqZYMCC1MqNOxfDD7WkCqpLk/QRib0mzjZtX7xu7hr/GX9C16k4YSymEnZXOp8MoNZ3pEg+MDht/0LoNZ0tZgDAWU8pEYl7OIWgzdvMOBCAeNzyK2NNfyKOS3ngRyaTuJCR ben@new';
const ED25519_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBYmlXywJOOQ4btR4iEdl9KIOqT7sFgGH3W8+aXrhQJ ben@laptop';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sliceid-example-'));
fs.cpSync(tree, root, { recursive: true });
console.log(`example node tree copied to ${root}`);

const child = spawn(process.execPath, [cli, 'run', '--root', root, '--port', port], { stdio: ['ignore', 'pipe', 'inherit'] });
const cleanup = (): void => fs.rmSync(root, { recursive: true, force: true });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill('SIGTERM'));
child.on('exit', (code) => {
  cleanup();
  process.exit(code ?? 1);
});

readline.createInterface({ input: child.stdout! }).on('line', (line) => {
  let entry: { msg?: string; port?: number; socket?: string; slicename?: string; keys?: number } = {};
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    // not a log line
  }
  console.log(line);
  if (entry.msg !== 'ready') return;
  const sliceid = `node ${path.relative(process.cwd(), cli) || cli}`;
  console.log(`
sliceid is serving slice ${entry.slicename} (${entry.keys} keys) on 127.0.0.1:${entry.port} and ${entry.socket}
Files written: ${root}/etc/slicename, ${root}/etc/slice.gid, ${root}/etc/node.gid

Try, in another terminal:
  python3 -c "import xmlrpc.client as x; print(x.ServerProxy('http://localhost:${entry.port}/').GetSSHKeys())"
  ${sliceid} status --root ${root}
  ${sliceid} show-gid ${root}/etc/slice.gid

Add an ssh-rsa key for ben: the daemon sees the file change, and GetSSHKeys (the python3 line
above, run again) lists it:
  echo 'PUBKEY LOGIN=ben KEY="${RSA_KEY}"' >> ${root}/var/emulab/boot/tmcc/accounts

An ssh-ed25519 key goes to sshd only (GetSSHKeys lists the key types PlanetLab's tools know, see
[api] getsshkeys_key_types); sshd's AuthorizedKeysCommand shows it:
  echo 'PUBKEY LOGIN=ben KEY="${ED25519_KEY}"' >> ${root}/var/emulab/boot/tmcc/accounts
  ${sliceid} authorized-keys ben --root ${root}
Press Ctrl-C to stop (the temp root is removed).
`);
});
