// Airlock's local certificate authority: the CA itself, per-host leaves and
// the trust bundle agents are pointed at. Plain Node (no Electron).
export { caPaths, type CaPaths } from './paths';
export { CaError, errnoOf } from './errors';
export { loadOrCreateCa, rotateCa, type CertAuthority } from './ca';
export { systemStoreWarning, writeTrustBundle } from './trust';
export { validateHostname, type HostKind } from './hostname';
export { LeafIssuer, type LeafIssuerOptions } from './leaf';
