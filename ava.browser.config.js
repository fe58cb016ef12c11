// `npm run test:browser`: the Chromium suite (test-browser/), apart from `npm test`
// because it needs the machine's Chromium (/usr/bin/chromium, or CHROMIUM_PATH).
export default {
  files: ['test-browser/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  // One browser at a time: these share two cores with everything else.
  concurrency: 1,
  timeout: '180s',
};
