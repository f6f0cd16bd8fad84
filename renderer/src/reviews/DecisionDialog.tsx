import { useEffect, useRef, useState } from 'react';
import type { ReviewView } from '../../../main/contract';

export type DecisionKind = 'approve' | 'deny';

export function DecisionDialog(props: {
  review: ReviewView;
  kind: DecisionKind;
  busy: boolean;
  onSubmit(reason: string): void;
  onClose(): void;
}) {
  const { review, kind, busy } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const needsReason = kind === 'deny';
  const valid = !needsReason || reason.trim().length > 0;

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);

  return (
    <dialog ref={ref} className="dialog" onClose={props.onClose} aria-labelledby="decision-title">
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (valid && !busy) props.onSubmit(reason);
        }}
      >
        <h2 id="decision-title">{kind === 'approve' ? 'Approve and forward' : 'Deny push'}</h2>
        <p className="dialog-sub">
          <span className="mono">{review.agent}</span> → <span className="mono">{review.host}/{review.repo}</span>
        </p>
        <label className="field">
          <span>{needsReason ? 'Reason (sent to the agent)' : 'Reason (optional)'}</span>
          <textarea
            autoFocus
            rows={3}
            value={reason}
            required={needsReason}
            onChange={(e) => setReason(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                if (valid && !busy) props.onSubmit(reason);
              }
            }}
            placeholder={needsReason ? 'Why is this push refused?' : 'Anything worth recording'}
          />
        </label>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className={`btn ${kind === 'approve' ? 'btn-approve' : 'btn-deny'}`} disabled={!valid || busy}>
            {busy ? 'Working…' : kind === 'approve' ? 'Approve' : 'Deny'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
