// Convenience barrel: `import { startUpstream, startGitServer, createTestPki } from '../helpers'`.
export * from './tmp';
export * from './test-ca';
export * from './https-upstream';
export * from './git-server';
export * from './git-client';
export * from './run';
