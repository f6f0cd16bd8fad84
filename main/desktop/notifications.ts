// A native notification for each review that newly becomes pending, and when recording stops (requests are then refused).
import { Notification } from 'electron';
import type { AirlockEvent } from '../contract';
import { plainNotificationText } from './text';

export interface ReviewNotifier {
  onEvent(event: AirlockEvent): void;
}

export function createReviewNotifier(onClick: (reviewId: string) => void, onRecordingClick: () => void = () => {}): ReviewNotifier {
  const seen = new Set<string>();
  let recordingFailed = false;
  return {
    onEvent(event) {
      if (event.type === 'status') {
        // Once per outage: the record cannot be written, so every agent request is refused.
        const failing = event.status.recording.state === 'failing';
        if (failing && !recordingFailed && Notification.isSupported()) {
          const r = event.status.recording as { error: string };
          const n = new Notification({ title: 'Airlock stopped forwarding', body: plainNotificationText(`It cannot write its record: ${r.error}`), silent: false });
          n.on('click', onRecordingClick);
          n.show();
        }
        recordingFailed = failing;
        return;
      }
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
