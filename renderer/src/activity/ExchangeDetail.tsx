import { useEffect, useState } from 'react';
import { BODY_NOT_KEPT, type BodyView, type ExchangeDetailView } from '../../../main/contract';
import { useAirlock, useSnapshot } from '../state/hooks';
import { saveTextFile } from '../shared/save-file';
import { VerdictBadge } from '../shared/badges';
import { bytes, hostPort, ms } from '../shared/format';

type Headers = Record<string, string | string[]> | null;

function HeaderTable({ headers, label }: { headers: Headers; label: string }) {
  if (!headers) return <p className="muted small">No response.</p>;
  const rows = Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((one) => [k, one] as const));
  if (rows.length === 0) return <p className="muted small">No headers.</p>;
  return (
    <table className="kv" aria-label={label}>
      <tbody>
        {rows.map(([k, v], i) => (
          <tr key={`${k}-${i}`}>
            <th className="mono">{k}</th>
            <td className="mono">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A body as text (agent-written: a text node, never HTML), or what is known of it. */
function Body({ b, which, id, reviewId }: { b: BodyView; which: 'request' | 'response'; id: string; reviewId?: string | null }) {
  const save = `airlock exchange ${id} --body ${which} > FILE`;
  const hash = b.sha256 && b.bytes > 0 ? <span className="mono muted small" title={b.sha256}> sha256 {b.sha256.slice(0, 16)}…</span> : null;
  if (b.kind === 'none' && which === 'request' && reviewId && b.sha256 && b.bytes > 0) {
    // A held push: its exact bytes are kept with its review (referenced, never copied into the record).
    return (
      <p className="muted small">
        {bytes(b.bytes)} sent, kept with{' '}
        <a href={`#/reviews/${encodeURIComponent(reviewId)}`}>review #{reviewId}</a> as{' '}
        <code className="mono">pushes/{b.sha256}.body</code> in Airlock's data directory.
      </p>
    );
  }
  if (b.kind === 'none') {
    return (
      <p className="muted small">
        {b.bytes === 0 ? 'No body.' : `${bytes(b.bytes)} sent; not kept (${BODY_NOT_KEPT}).`}
        {hash}
      </p>
    );
  }
  const kept = b.complete ? bytes(b.bytes) : `first ${bytes(b.keptBytes)} of ${bytes(b.bytes)} kept`;
  if (b.kind === 'binary') {
    return (
      <p className="muted small">
        {kept}, binary{b.note ? ` (${b.note})` : ''}.{hash} Save it with <code className="mono">{save}</code>.
      </p>
    );
  }
  return (
    <>
      <p className="muted small">
        {kept}{b.note ? ` · ${b.note}` : ''}{hash}
      </p>
      <pre className="body-text">{b.text}</pre>
      {b.moreBytes > 0 ? (
        <p className="muted small">
          {bytes(b.moreBytes)} more not shown; <code className="mono">{save}</code> writes all of it.
        </p>
      ) : null}
    </>
  );
}

export function ExchangeDetail({ id, onClose }: { id: string; onClose(): void }) {
  const store = useAirlock();
  const { busy } = useSnapshot();
  const [x, setX] = useState<ExchangeDetailView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setX(null);
    setError(null);
    store.client.getExchange({ id }).then(
      (v) => live && setX(v),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [store, id]);

  return (
    <section className="exchange-detail" aria-label="Exchange detail">
      <div className="pane-head">
        <h2>Exchange {id}</h2>
        {x ? <span className="mono small">{x.method} {x.scheme}://{hostPort(x.host, x.port, x.scheme)}{x.path}</span> : null}
        <span className="spacer" />
        <button type="button" className="btn btn-ghost btn-tiny" onClick={onClose} aria-label="Close the exchange detail">
          Close <kbd>Esc</kbd>
        </button>
      </div>
      {error ? <p className="bad">{error}</p> : null}
      {!x && !error ? <p className="muted">Loading…</p> : null}
      {x ? (
        <div className="detail-scroll">
          <dl className="meta">
            <dt className="muted">Agent</dt>
            <dd className="mono">
              {x.agent}
              {x.sessionId ? (
                <>
                  <span className="muted"> · session {x.sessionId}</span>{' '}
                  <button type="button" className="btn btn-ghost btn-tiny" disabled={busy.has('har')}
                    title="Every exchange of this agent connection, with headers and bodies, as a HAR file (browser developer tools, HTTP Toolkit, Charles and Playwright read it)"
                    onClick={() => void store.exportHar({ sessionId: x.sessionId! }, saveTextFile)}>
                    Export session (HAR)
                  </button>
                </>
              ) : null}
            </dd>
            <dt className="muted">Decision</dt>
            <dd>
              <VerdictBadge verdict={x.decision?.verdict ?? null} />{' '}
              {x.decision ? <span className="small">{x.decision.explanation} <span className="mono muted">({x.decision.ruleId})</span></span> : null}
              {x.reviewId ? <a className="small" href={`#/reviews/${encodeURIComponent(x.reviewId)}`}> review #{x.reviewId}</a> : null}
            </dd>
            <dt className="muted">Status</dt>
            <dd className={x.error || (x.status ?? 0) >= 400 ? 'bad' : ''}>{x.status ?? '—'}{x.error ? ` · ${x.error}` : ''}</dd>
            <dt className="muted">Time</dt>
            <dd className="mono small">
              {x.startedAt} · connect {ms(x.timings.connectMs)}, TLS {ms(x.timings.tlsMs)}, upstream {ms(x.timings.upstreamMs)}, total {ms(x.timings.totalMs)}
            </dd>
          </dl>
          <div className="detail-cols">
            <div>
              <h3 className="sub">Request</h3>
              <HeaderTable headers={x.requestHeaders} label="Request headers" />
              <Body b={x.requestBody} which="request" id={x.id} reviewId={x.reviewId} />
            </div>
            <div>
              <h3 className="sub">Response</h3>
              <HeaderTable headers={x.responseHeaders} label="Response headers" />
              <Body b={x.responseBody} which="response" id={x.id} />
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}
