import { useEffect } from 'react';
import type { ReviewView } from '../../../main/contract';
import { useAirlock, useNow } from '../state/hooks';
import { StateBadge } from '../shared/badges';
import { age, bytes, countdown, dateTime } from '../shared/format';
import { RefSection } from './RefSection';
import type { DecisionKind } from './DecisionDialog';
import { Visible } from '../shared/Visible';

export function ReviewDetail({ review, onDecide }: { review: ReviewView; onDecide(kind: DecisionKind): void }) {
  const store = useAirlock();
  const now = useNow();
  useEffect(() => {
    // List views may be abbreviated; fetch the full one when opened.
    void store.loadReview(review.id);
  }, [store, review.id]);
  const pending = review.state === 'pending';
  return (
    <article className="detail" aria-label="Review detail">
      <header className="detail-head">
        <div className="detail-title">
          <StateBadge state={review.state} />
          <h2>
            <span className="mono">{review.host}/{review.repo}</span>
          </h2>
        </div>
        <p className="detail-summary">{review.summary}</p>
        <dl className="meta">
          <dt>Agent</dt>
          <dd className="mono">{review.agent}</dd>
          <dt>Kind</dt>
          <dd>{review.kind}</dd>
          <dt>Held</dt>
          <dd title={dateTime(review.createdAt)}>{age(review.createdAt, now)}</dd>
          {pending ? (
            <>
              <dt>Expiry</dt>
              <dd className={Date.parse(review.expiresAt) - now < 5 * 60_000 ? 'urgent' : ''}>{countdown(review.expiresAt, now)}</dd>
            </>
          ) : null}
          <dt>Body</dt>
          <dd>
            <span className="mono sha" title="SHA-256 of the exact bytes forwarded on approval">sha256:{review.bodySha256}</span>{' '}
            <span className="muted">({bytes(review.bodyBytes)})</span>
          </dd>
          <dt>Review id</dt>
          <dd className="mono muted">{review.id}</dd>
        </dl>
        {pending ? (
          <div className="actions">
            <button type="button" className="btn btn-approve" onClick={() => onDecide('approve')}>
              Approve <kbd>a</kbd>
            </button>
            <button type="button" className="btn btn-deny" onClick={() => onDecide('deny')}>
              Deny <kbd>d</kbd>
            </button>
          </div>
        ) : (
          <div className={`decision decision-${review.state}`}>
            <strong>{review.state}</strong>
            {review.decidedBy ? <> by <span className="mono">{review.decidedBy}</span></> : null}
            {review.decidedAt ? <> · {dateTime(review.decidedAt)}</> : null}
            {review.reason ? <div className="decision-reason">“{review.reason}”</div> : null}
            {review.state === 'approved' ? (
              <div className="small">
                Upstream:{' '}
                {review.upstreamResult !== null && review.upstreamResult !== 'ok' ? (
                  <span className="bad">
                    {review.upstreamStatus ? `HTTP ${review.upstreamStatus}: ` : ''}
                    <Visible text={review.upstreamResult} />
                  </span>
                ) : review.upstreamStatus === null ? <span className="muted">no answer yet</span> : (
                  <span className={review.upstreamStatus < 400 ? 'ok' : 'bad'}>
                    HTTP {review.upstreamStatus}{review.upstreamResult === 'ok' ? ', every ref updated' : ''}
                  </span>
                )}
              </div>
            ) : null}
          </div>
        )}
      </header>

      {review.findings.length > 0 ? (
        <section className="findings">
          <h3 className="sub">Findings</h3>
          <ul>
            {review.findings.map((f, i) => (
              <li key={i} className={`finding finding-${f.severity}`}>
                <span className={`badge sev-${f.severity}`}>{f.severity}</span>
                <span className="mono muted">{f.rule}</span>
                <span>{f.message}</span>
                {f.path ? (
                  <span className="mono muted">
                    <Visible text={f.path} />
                    {f.line !== null ? `:${f.line}` : ''}
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        </section>
      ) : null}

      {review.refs.map((r, i) => (
        <RefSection key={`${r.ref}:${i}`} update={r} index={i} />
      ))}
      {review.refs.length === 0 ? <p className="muted">No ref updates in this push.</p> : null}
    </article>
  );
}
