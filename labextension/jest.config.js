// Unit tests for the DOM components (timeline, approval) under jsdom; they import no JupyterLab packages.
module.exports = {
  testEnvironment: 'jsdom',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', esModuleInterop: true, types: ['jest'] } }] },
  testMatch: ['<rootDir>/src/__tests__/**/*.spec.ts']
};
