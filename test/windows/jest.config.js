// The Windows tests (payconnect on Windows, under Wine: docs/windows-serial.md): a jest project of their
// own, run by .ci/run after `npm test` with `npx jest -c test/windows/jest.config.js`. Slow to start (Wine
// boots a prefix, node.exe loads the CLI through Wine's file layer); without wine64 and node.exe they skip,
// and fail under CI=true (test/support/prerequisites.ts).
module.exports = {
  rootDir: '../..',
  displayName: 'windows',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  testMatch: ['<rootDir>/test/windows/**/*.spec.ts'],
};
