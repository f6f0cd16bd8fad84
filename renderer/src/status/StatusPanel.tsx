import { useState } from 'react';
import { useAirlock, useNow, useSnapshot } from '../state/hooks';
import { age, bytes, dateTime } from '../shared/format';
import type { Transport } from '../api';

export function StatusPanel({ transport }: { transport: Transport }) {
  const { status, audit, busy } = useSnapshot();
  const store = useAirlock();
  const now = useNow();
  const [keptHead, setKeptHead] = useState('');
  const verify = () => void store.verifyAudit(keptHead.trim() || undefined);
  return (
    <div className="page">
      <div className="pane-head">
        <h1>Status</h1>
        {status ? <span className="muted small">Airlock {status.version}</span> : null}
      </div>
      {status ? (
        <dl className="meta meta-wide">
          <dt>Proxy URL</dt>
          <dd className="mono selectable">{status.proxyUrl}</dd>
          <dt>Web console</dt>
          <dd className="mono selectable">{status.consoleUrl ?? <span className="muted">off</span>}</dd>
          <dt>CA certificate</dt>
          <dd className="mono selectable">{status.caPath}</dd>
          <dt>Data directory</dt>
          <dd className="mono selectable">{status.dataDir}</dd>
          <dt>Running since</dt>
          <dd title={dateTime(status.startedAt)}>{age(status.startedAt, now)}</dd>
          <dt>Exchanges</dt>
          <dd>{status.counts.exchanges}</dd>
          <dt>Pending reviews</dt>
          <dd>{status.counts.pendingReviews}</dd>
          <dt>Recording</dt>
          <dd className={status.recording.state === 'failing' ? 'bad' : undefined}>
            {status.recording.state === 'on' ? 'on: every exchange is recorded' : null}
            {status.recording.state === 'off' ? 'off (record: false)' : null}
            {status.recording.state === 'failing'
              ? `failing since ${dateTime(status.recording.since)}: ${status.recording.error}; requests are refused`
              : null}
          </dd>
          <dt>Free disk (record)</dt>
          <dd className={status.disk?.low ? 'bad' : undefined}>{status.disk ? `${bytes(status.disk.freeBytes)}${status.disk.low ? ' (low)' : ''}` : 'unknown'}</dd>
          <dt>Upstream</dt>
          <dd>
            {status.upstreamProxy ? (
              <>
                through the proxy <span className="mono selectable">{status.upstreamProxy.proxy}</span>
                {status.upstreamProxy.noProxy.length ? <span className="muted"> (direct: {status.upstreamProxy.noProxy.join(', ')})</span> : null}
              </>
            ) : 'direct'}
          </dd>
          <dt>This view via</dt>
          <dd>{transport === 'ipc' ? 'desktop bridge' : 'web console (HTTP)'}</dd>
        </dl>
      ) : (
        <p className="empty muted">Status not loaded.</p>
      )}
      <section className="audit">
        <h2 className="sub">Audit log</h2>
        <form
          className="audit-verify"
          onSubmit={(e) => {
            e.preventDefault();
            verify();
          }}
        >
          <label className="field">
            <span className="small muted">Kept head (optional): a head from an earlier verify or export, kept outside this machine</span>
            <input
              className="mono"
              value={keptHead}
              onChange={(e) => setKeptHead(e.target.value)}
              spellCheck={false}
              autoComplete="off"
              placeholder="64 hex digits"
              aria-label="Kept head"
            />
          </label>
          <button type="submit" className="btn" disabled={busy.has('audit')}>
            {busy.has('audit') ? 'Verifying…' : 'Verify audit chain'}
          </button>
        </form>
        {audit ? (
          <div className={`audit-result ${audit.ok ? 'ok' : 'bad'}`} role="status">
            <strong>{audit.ok ? 'Intact' : 'BROKEN'}</strong> · {audit.events} events
            {audit.brokenAt !== null ? <> · first bad sequence {audit.brokenAt}</> : null}
            <div>{audit.message}</div>
            {audit.head ? <div className="mono small muted selectable">head {audit.head}</div> : null}
            {audit.headSeq !== null ? <div>The kept head is seq {audit.headSeq}: nothing up to it was cut off or rewritten.</div> : null}
            {audit.ok && audit.head && audit.headSeq === null ? (
              <div className="small muted">
                A chain verifies on its own even with its last events cut off. Keep this head outside this machine;
                later, <span className="mono">airlock audit verify --head HASH</span> shows whether the log still holds it.
              </div>
            ) : null}
          </div>
        ) : null}
      </section>
    </div>
  );
}
