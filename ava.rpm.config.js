// npm run test:rpm: builds the RPM (npm run rpm) and tests it installed into scratch roots. TypeScript
// through tsx; one file at a time (the builds share packaging/.cache), with a timeout generous
// enough for a cold build (runtime downloads and the better-sqlite3 compiles).
export default {
  files: ['test/rpm/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '20m',
  concurrency: 1,
  workerThreads: false,
};
