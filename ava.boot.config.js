// npm run test:boot: builds the .deb and the RPM and boots them under a real systemd in
// systemd-nspawn containers (test/boot/). Needs root. One file at a time, serial inside.
export default {
  files: ['test/boot/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '20m',
  concurrency: 1,
  workerThreads: false,
};
