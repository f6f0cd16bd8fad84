// A native notification for each review that newly becomes pending.
import { Notification } from 'electron';
import type { AirlockEvent } from '../contract';

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

export interface ReviewNotifier {
  onEvent(event: AirlockEvent): void;
}

export function createReviewNotifier(onClick: (reviewId: string) => void): ReviewNotifier {
  const seen = new Set<string>();
  return {
    onEvent(event) {
      if (event.type !== 'review') return;
      const r = event.review;
      if (r.state !== 'pending' || seen.has(r.id)) return;
      seen.add(r.id);
      if (!Notification.isSupported()) return;
      const n = new Notification({
        title: 'Push held for review',
        body: plainNotificationText(`${r.agent} → ${r.host}/${r.repo}`),
        silent: false,
      });
      n.on('click', () => onClick(r.id));
      n.show();
    },
  };
}
