// Unit and integration tests run from TypeScript through tsx; integration tests start the
// compiled CLI in dist/ (npm test builds it first).
export default {
  files: ['test/**/*.test.ts', '!test/rpm/**', '!test/boot/**'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
