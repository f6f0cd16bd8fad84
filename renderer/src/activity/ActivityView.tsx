import { useEffect, useRef, useState } from 'react';
import type { ExchangeView, ReviewState } from '../../../main/contract';
import { navigate, useAirlock, useSnapshot } from '../state/hooks';
import { useKeys } from '../shared/keys';
import { StateBadge, VerdictBadge } from '../shared/badges';
import { clockTime, hostPort, ms } from '../shared/format';
import { ExchangeDetail } from './ExchangeDetail';
import { saveTextFile } from '../shared/save-file';
import { bytes } from '../shared/format';
import { heldOutcome } from './outcome';

const ROW_H = 26;
const WINDOW_OVER = 500; // above this many rows only the visible ones are rendered
const OVERSCAN = 20;
/**
 * The log's columns (styles.css's .grid-row, with a wider Verdict column): a held push shows its review
 * and how it ended there (`review #12 interrupted`), not only the policy's verdict.
 */
const COLUMNS = { gridTemplateColumns: '96px 110px 72px 60px minmax(170px, 1fr) minmax(160px, 2fr) 56px 172px 76px' };

function Row({ e, selected, onSelect, reviewState }: { e: ExchangeView; selected: boolean; onSelect(): void; reviewState?: ReviewState }) {
  // The status Airlock answered with (a 502 for an unreachable upstream), 'error' when none was sent.
  const status = e.status !== null ? String(e.status) : e.error ? 'error' : 'pending';
  const host = hostPort(e.host, e.port, e.scheme);
  const outcome = heldOutcome(e, reviewState);
  return (
    <div
      role="row"
      className={`grid-row${selected ? ' selected' : ''}`}
      style={COLUMNS}
      aria-selected={selected}
      onClick={onSelect}
      onDoubleClick={() => e.reviewId && navigate({ view: 'reviews', id: e.reviewId })}
      title={e.error ?? e.decision?.explanation ?? undefined}
    >
      <span role="cell" className="mono muted" title={e.startedAt}>{clockTime(e.startedAt)}</span>
      <span role="cell" className="mono">{e.agent}</span>
      <span role="cell">{e.kind}</span>
      <span role="cell" className="mono">{e.method}</span>
      <span role="cell" className="mono" title={host}>{host}</span>
      <span role="cell" className="mono path">{e.path}</span>
      <span role="cell" className={`mono num ${e.error || (e.status ?? 0) >= 400 ? 'bad' : ''}`}>{status}</span>
      <span role="cell">
        <VerdictBadge verdict={e.decision?.verdict ?? null} />
        {e.reviewId ? (
          <>
            {' '}
            <a className="small mono" href={`#/reviews/${encodeURIComponent(e.reviewId)}`} onClick={(ev) => ev.stopPropagation()}
              title={`review #${e.reviewId}`}>
              #{e.reviewId}
            </a>
            {outcome ? <>{' '}<StateBadge state={outcome} /></> : null}
          </>
        ) : null}
      </span>
      <span role="cell" className="mono num muted">{ms(e.timings.totalMs)}</span>
    </div>
  );
}

export function ActivityView() {
  const snap = useSnapshot();
  const store = useAirlock();
  const rows = snap.exchanges;
  const body = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [sel, setSel] = useState(-1);
  // The selected exchange's full record (headers, bodies) shows below the log while open.
  const [open, setOpen] = useState(false);
  const selectedId = rows[sel]?.id ?? null;
  const windowed = rows.length > WINDOW_OVER;

  useEffect(() => {
    const el = body.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const move = (d: number) => {
    if (rows.length === 0) return;
    const next = Math.min(rows.length - 1, Math.max(0, sel + d));
    setSel(next);
    const el = body.current;
    if (el) {
      const top = next * ROW_H;
      if (top < el.scrollTop) el.scrollTop = top;
      else if (top + ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_H - el.clientHeight;
    }
  };
  useKeys({
    j: () => move(1),
    k: () => move(-1),
    ArrowDown: () => move(1),
    ArrowUp: () => move(-1),
    Enter: () => {
      const id = rows[sel]?.reviewId;
      if (id) navigate({ view: 'reviews', id });
      else if (sel >= 0) setOpen(true);
    },
    Escape: () => setOpen(false),
  });

  const first = windowed ? Math.max(0, Math.floor(scrollTop / ROW_H) - OVERSCAN) : 0;
  const last = windowed ? Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_H) + OVERSCAN) : rows.length;
  const visible = rows.slice(first, last);

  return (
    <div className="page page-fill">
      <div className="pane-head">
        <h1>Activity</h1>
        <span className="muted small">{rows.length} exchanges{windowed ? ' (windowed)' : ''}</span>
        {snap.lastExport ? (
          <span className="muted small" role="status" title={`sha256 ${snap.lastExport.sha256}`}>
            Saved {snap.lastExport.fileName}: {snap.lastExport.count} exchange{snap.lastExport.count === 1 ? '' : 's'}, {bytes(snap.lastExport.bytes)}
          </span>
        ) : null}
        <span className="spacer" />
        <button type="button" className="btn" disabled={rows.length === 0 || snap.busy.has('har')}
          title="The exchanges in this log (from the oldest one loaded), with headers and bodies, as a HAR file"
          onClick={() => void store.exportHar({ since: rows[rows.length - 1]!.startedAt }, saveTextFile)}>
          {snap.busy.has('har') ? 'Exporting…' : 'Export HAR'}
        </button>
        {!snap.exchangesExhausted && rows.length > 0 ? (
          <button type="button" className="btn" disabled={snap.busy.has('older')} onClick={() => void store.loadOlderExchanges()}>
            Load older
          </button>
        ) : null}
      </div>
      <div className="grid" role="table" aria-label="Exchange log" aria-rowcount={rows.length}>
        <div role="row" className="grid-row grid-head" style={COLUMNS}>
          <span role="columnheader">Time</span>
          <span role="columnheader">Agent</span>
          <span role="columnheader">Kind</span>
          <span role="columnheader">Method</span>
          <span role="columnheader">Host</span>
          <span role="columnheader">Path</span>
          <span role="columnheader" className="num">Status</span>
          <span role="columnheader">Verdict</span>
          <span role="columnheader" className="num">Duration</span>
        </div>
        <div className="grid-body" ref={body} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} role="rowgroup">
          {rows.length === 0 ? <p className="empty muted">No traffic yet.</p> : null}
          <div className="grid-spacer" style={windowed ? { height: rows.length * ROW_H } : undefined}>
            <div style={windowed ? { transform: `translateY(${first * ROW_H}px)` } : undefined}>
              {visible.map((e, i) => (
                <Row key={e.id} e={e} selected={first + i === sel} onSelect={() => { setSel(first + i); setOpen(true); }}
                  reviewState={e.reviewId ? snap.reviewsById[e.reviewId]?.state : undefined} />
              ))}
            </div>
          </div>
        </div>
      </div>
      {open && selectedId ? <ExchangeDetail id={selectedId} onClose={() => setOpen(false)} /> : null}
    </div>
  );
}
