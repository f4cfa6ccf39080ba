// Three projects: `unit` (pure code, fakes, loopback sockets; fast), `system` (real hosts in network
// namespaces, real processes) and `windows` (payconnect's Windows build under Wine: docs/windows-serial.md;
// slow to start, as Wine boots a prefix and node.exe loads the CLI through Wine's file layer). `npm test`
// runs all three; with CI=true a system test whose prerequisite is
// missing fails instead of skipping (see test/support/prerequisites.ts).
const transform = { '^.+\\.ts$': ['@swc/jest'] };
module.exports = {
  // A test's time limit detects a hang; it is never a speed claim (timings never go in pass/fail tests). Jest's
  // 5 s default failed real-pty and real-socket tests whose work takes a second on a quiet machine when CI's
  // two CPUs were shared with Wine and the other workers (printer-tap.serial.spec.ts, 2026-11-29). Tests that
  // need longer still say so themselves.
  testTimeout: 20_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: [
        '<rootDir>/src/**/*.spec.ts',
        '<rootDir>/test/loopback/**/*.spec.ts',
        '<rootDir>/test/server/**/*.spec.ts',
        '<rootDir>/test/terminal/**/*.spec.ts',
        '<rootDir>/test/plugin/**/*.spec.ts',
        '<rootDir>/test/native/**/*.spec.ts',
        // docs/support/problems.md held to the tests it names, and the problems no other spec reproduces
        '<rootDir>/test/docs/**/*.spec.ts',
      ],
    },
    {
      displayName: 'system',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/system/**/*.spec.ts'],
    },
    {
      displayName: 'windows',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/windows/**/*.spec.ts'],
    },
  ],
};
