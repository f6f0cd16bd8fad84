export * from './api';
export * from './errors';
export * from './views';
export * from './http-api';
export * from './time';
