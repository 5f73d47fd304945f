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
  echo 'PUBKEY LOGIN=ben KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBYmlXywJOOQ4btR4iEdl9KIOqT7sFgGH3W8+aXrhQJ ben@new"' >> ${root}/var/emulab/boot/tmcc/accounts
Press Ctrl-C to stop (the temp root is removed).
`);
});
