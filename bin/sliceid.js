#!/usr/bin/env node
// sshd's AuthorizedKeysCommand runs `sliceid authorized-keys USER` for every login attempt: that
// command goes straight to its small CommonJS module, before the CLI and its table are loaded.
if (process.argv[2] === 'authorized-keys') {
  const { run } = await import('../dist/src/commands/authorized-keys.cjs');
  process.exitCode = run(process.argv.slice(3));
} else {
  // A package runs its production bundle (dist/bundle), which packaging/stage.sh marks as the
  // package's entry (dist/bundle/ENTRY). A checkout runs the tree `npm run build` compiled
  // (dist/src): never a bundle that an earlier `npm run bundle`, bench or package build left
  // behind, older than the sources.
  const { existsSync } = await import('node:fs');
  const packaged = existsSync(new URL('../dist/bundle/ENTRY', import.meta.url));
  const { run } = await import(packaged ? '../dist/bundle/cli.js' : '../dist/src/cli.js');
  run();
}
