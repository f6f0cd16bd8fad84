export * from './errors';
export * from './pkt-line';
export * from './receive-pack';
export * from './report-status';
export * from './smart-http';
export * from './git-cli';
export * from './remote-cache';
export * from './push-analysis';
