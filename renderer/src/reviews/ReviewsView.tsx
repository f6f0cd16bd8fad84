import { useEffect, useRef, useState } from 'react';
import type { ReviewView } from '../../../main/contract';
import { navigate, useAirlock, useNow, useSnapshot } from '../state/hooks';
import { useKeys } from '../shared/keys';
import { StateBadge } from '../shared/badges';
import { age, countdown, shortRef } from '../shared/format';
import { ReviewDetail } from './ReviewDetail';
import { DecisionDialog, type DecisionKind } from './DecisionDialog';

function ReviewItem({ r, selected, now }: { r: ReviewView; selected: boolean; now: number }) {
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (selected) ref.current?.scrollIntoView({ block: 'nearest' });
  }, [selected]);
  const refs = r.refs.map((u) => shortRef(u.ref));
  // A critical finding (a stored credential committed, bidi controls) is seen before the review is opened.
  const critical = r.findings.filter((f) => f.severity === 'critical').length;
  return (
    <li ref={ref} className={`item${selected ? ' selected' : ''} item-${r.state}`} aria-selected={selected} role="option">
      <a href={`#/reviews/${encodeURIComponent(r.id)}`} className="item-link">
        <div className="item-row">
          <StateBadge state={r.state} />
          <span className="mono item-repo" title={`${r.host}/${r.repo}`}>{r.host}/{r.repo}</span>
          <span className="spacer" />
          <span className="muted small">{age(r.createdAt, now)}</span>
        </div>
        <div className="item-row small">
          <span className="mono">{r.agent}</span>
          <span className="muted mono item-refs">{refs.join(', ') || '—'}</span>
          <span className="spacer" />
          {critical > 0 ? <span className="badge sev-critical" title={r.findings.filter((f) => f.severity === 'critical').map((f) => f.message).join('\n')}>{critical} critical</span> : null}
          {r.state === 'pending' ? (
            <span className={Date.parse(r.expiresAt) - now < 5 * 60_000 ? 'urgent' : 'muted'}>{countdown(r.expiresAt, now)}</span>
          ) : (
            <>
              {r.decidedBy ? <span className="muted">by {r.decidedBy}</span> : null}
              {r.state === 'approved' && r.upstreamResult !== null && r.upstreamResult !== 'ok' ? (
                <span className="mono bad" title={r.upstreamResult}>{r.upstreamResult.startsWith('upstream rejected') ? 'rejected upstream' : 'not landed'}</span>
              ) : r.state === 'approved' && r.upstreamStatus !== null ? (
                <span className={`mono ${r.upstreamStatus < 400 ? 'ok' : 'bad'}`}>HTTP {r.upstreamStatus}</span>
              ) : null}
            </>
          )}
        </div>
        {r.state !== 'pending' && r.reason ? <div className="item-reason small muted">“{r.reason}”</div> : null}
      </a>
    </li>
  );
}

export function ReviewsView({ selectedId }: { selectedId: string | null }) {
  const snap = useSnapshot();
  const store = useAirlock();
  const now = useNow();
  const [dialog, setDialog] = useState<{ id: string; kind: DecisionKind } | null>(null);
  const list = snap.reviews;
  const idx = selectedId ? list.findIndex((r) => r.id === selectedId) : -1;
  const selected = selectedId ? snap.reviewsById[selectedId] ?? null : null;
  const pendingCount = list.filter((r) => r.state === 'pending').length;

  const move = (d: number) => {
    if (list.length === 0) return;
    const next = idx === -1 ? (d > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, idx + d));
    navigate({ view: 'reviews', id: list[next]!.id });
  };
  const openDialog = (kind: DecisionKind) => {
    if (selected?.state === 'pending') setDialog({ id: selected.id, kind });
  };
  useKeys({
    j: () => move(1),
    k: () => move(-1),
    ArrowDown: () => move(1),
    ArrowUp: () => move(-1),
    a: () => openDialog('approve'),
    d: () => openDialog('deny'),
    Escape: () => navigate({ view: 'reviews', id: null }),
  });

  useEffect(() => {
    if (selectedId && !snap.reviewsById[selectedId] && snap.loaded) void store.loadReview(selectedId);
  }, [selectedId, snap.loaded, snap.reviewsById, store]);

  const dialogReview = dialog ? snap.reviewsById[dialog.id] : undefined;
  return (
    <div className="split">
      <aside className="list-pane" aria-label="Reviews">
        <div className="pane-head">
          <h1>Reviews</h1>
          <span className="muted small">{snap.loaded ? `${pendingCount} pending` : ''}</span>
        </div>
        {list.length === 0 ? (
          <p className="empty muted">{snap.loaded ? 'Nothing held. Pushes from agents appear here.' : snap.unavailable ? `Reviews not loaded: ${snap.unavailable}` : 'Loading…'}</p>
        ) : (
          <ul className="items" role="listbox" aria-label="Review list">
            {list.map((r) => (
              <ReviewItem key={r.id} r={r} selected={r.id === selectedId} now={now} />
            ))}
          </ul>
        )}
        <p className="hint muted small">
          <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>a</kbd> approve · <kbd>d</kbd> deny · <kbd>Esc</kbd> close
        </p>
      </aside>
      <div className="detail-pane">
        {selected ? (
          <ReviewDetail key={selected.id} review={selected} onDecide={openDialog} />
        ) : selectedId && snap.busy.has(`review:${selectedId}`) ? (
          <p className="empty muted">Loading review…</p>
        ) : (
          <p className="empty muted">{selectedId ? 'No such review.' : 'Select a review to see its diff.'}</p>
        )}
      </div>
      {dialog && dialogReview ? (
        <DecisionDialog
          review={dialogReview}
          kind={dialog.kind}
          busy={snap.busy.has(`decide:${dialog.id}`)}
          onClose={() => setDialog(null)}
          onSubmit={(reason) => {
            void store.decide(dialog.id, dialog.kind, reason).then(() => setDialog(null));
          }}
        />
      ) : null}
    </div>
  );
}
