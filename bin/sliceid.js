#!/usr/bin/env node
// sshd's AuthorizedKeysCommand runs `sliceid authorized-keys USER` for every login attempt: that
// command goes straight to its small CommonJS module, before the CLI and its table are loaded.
if (process.argv[2] === 'authorized-keys') {
  const { run } = await import('../dist/src/commands/authorized-keys.cjs');
  process.exitCode = run(process.argv.slice(3));
} else {
  const { run } = await import('../dist/src/cli.js');
  run();
}
