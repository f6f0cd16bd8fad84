// Process-wide settings for a long-running gateway process (`airlock serve`, the desktop app).
// Not applied by the library (tests and embedders keep their own V8 settings).
import v8 from 'node:v8';

/**
 * Keeps V8's young generation at its starting size (1 MiB semi-spaces) instead of letting it grow
 * to 16 MiB ×2 under load: the proxy allocates a few KiB per request and keeps almost none of it,
 * so a small nursery is scavenged often and cheaply, and the process stays ~15–30 MB smaller after
 * a burst (docs/decisions.md has the numbers). V8 reads this flag each time it would grow the new
 * space, so setting it at start-up is enough; `--max-semi-space-size` would need a command-line flag.
 */
export function tuneForGateway(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
