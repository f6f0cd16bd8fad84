// A native notification for each review that newly becomes pending, and when recording stops (requests are then refused).
import { Notification } from 'electron';
import type { AirlockEvent } from '../contract';
import { plainNotificationText } from './text';

export interface ReviewNotifier {
  onEvent(event: AirlockEvent): void;
}

export function createReviewNotifier(onClick: (reviewId: string) => void, onRecordingClick: () => void = () => {}): ReviewNotifier {
  const seen = new Set<string>();
  // A Notification nothing refers to can be garbage-collected while shown, and its click is then
  // lost (electron#12690): each is kept until it is clicked, closed or fails.
  const shown = new Set<Notification>();
  const show = (n: Notification) => {
    shown.add(n);
    const forget = () => shown.delete(n);
    n.on('click', forget);
    n.on('close', forget);
    n.on('failed', forget);
    n.show();
  };
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
          show(n);
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
      show(n);
    },
  };
}
