// sliceid's command line: dispatch to one small module per command (src/commands/).
import { pathToFileURL } from 'node:url';
import { daemonHeap } from './heap.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main(args: string[]): Promise<number> }> }> = {
  once: { summary: 'derive the identity, issue GIDs as needed, write the three files, exit', load: () => import('./commands/once.js') },
  run: { summary: 'the daemon: write the files, serve the NodeManager API, follow changes', load: () => import('./commands/run.js') },
  status: { summary: 'identity, sources, cache and API state of this node', load: () => import('./commands/status.js') },
  keys: { summary: 'print what GetSSHKeys answers', load: () => import('./commands/keys.js') },
  'authorized-keys': { summary: "print a user's keys (sshd AuthorizedKeysCommand)", load: () => import('./commands/authorized-keys.cjs') },
  refresh: { summary: 'ask the running daemon for a full refresh (SIGHUP)', load: () => import('./commands/refresh.js') },
  'show-gid': { summary: 'decode and verify a GID chain file', load: () => import('./commands/show-gid.js') },
  clean: { summary: 'remove everything node-specific before an image is made (--dry-run: list it)', load: () => import('./commands/clean.js') },
  hooks: { summary: 'list the slice hooks and their last runs; "hooks run": run the pending ones now', load: () => import('./commands/hooks.js') },
  wait: { summary: 'wait until the identity files are written and the API answers', load: () => import('./commands/wait.js') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: sliceid <command> [options]\n\ncommands:\n${lines.join('\n')}\n\ncommon options: --root DIR (node tree prefix, default /), --config FILE, --json\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const { version } = await import('./version.js');
    process.stdout.write(`sliceid ${version}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sliceid: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  if (name === 'run') daemonHeap();
  if (name === 'wait') daemonHeap(); // it may wait long: asleep like the daemon (no memory-reducer GCs)
  const mod = await command.load();
  return mod.main(rest);
}

/** Run the CLI with this process's arguments and set the exit code. */
export function run(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sliceid: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) run();
