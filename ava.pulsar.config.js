// `npm run test:pulsar` (scripts/test-pulsar.ts): the tests against a real Apache Pulsar
// broker, one file at a time. `npm test` leaves them out (package.json "ava").
export default {
  files: ['test/pulsar/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  concurrency: 1,
  timeout: '5m',
};
