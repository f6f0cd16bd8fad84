// Pure text helpers for native UI surfaces (no Electron import, so Node tests can load them).

/**
 * Agent-written text as plain notification text: no control characters, bounded
 * length, and (on Linux, where notification daemons may parse a markup subset)
 * no characters that could form markup.
 */
export function plainNotificationText(s: string, platform: string = process.platform): string {
  let out = s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, ' ').replace(/\s+/g, ' ').trim();
  if (platform === 'linux') out = out.replace(/&/g, '＆').replace(/</g, '＜').replace(/>/g, '＞');
  return out.length > 160 ? out.slice(0, 159) + '…' : out;
}

export function pendingLabel(count: number): string {
  return count === 0 ? 'No pushes waiting' : count === 1 ? '1 review pending' : `${count} reviews pending`;
}
