// A native notification for each review that newly becomes pending.
import { Notification } from 'electron';
import type { AirlockEvent } from '../contract';
import { plainNotificationText } from './text';

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
