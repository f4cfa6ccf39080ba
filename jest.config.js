// Two projects: `unit` (pure code, fakes, loopback sockets; fast) and `system` (real hosts in network
// namespaces, real processes). `npm test` runs both; with CI=true a system test whose prerequisite is
// missing fails instead of skipping (see test/support/prerequisites.ts).
const transform = { '^.+\\.ts$': ['@swc/jest'] };
module.exports = {
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
      ],
    },
    {
      displayName: 'system',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/system/**/*.spec.ts'],
    },
  ],
};
