import { useEffect } from 'react';
import { navigate, routeHref, useRoute, useSnapshot, type Route } from './state/hooks';
import { useKeys } from './shared/keys';
import { ErrorBanner } from './shared/ErrorBanner';
import { RecordingBanner } from './shared/RecordingBanner';
import { ReviewsView } from './reviews/ReviewsView';
import { ActivityView } from './activity/ActivityView';
import { AgentsView } from './agents/AgentsView';
import { StatusPanel } from './status/StatusPanel';
import type { Transport } from './api';

const NAV: { route: Route; label: string; key: string }[] = [
  { route: { view: 'reviews', id: null }, label: 'Reviews', key: '1' },
  { route: { view: 'activity' }, label: 'Activity', key: '2' },
  { route: { view: 'agents' }, label: 'Agents', key: '3' },
  { route: { view: 'status' }, label: 'Status', key: '4' },
];

export function App({ transport }: { transport: Transport }) {
  const route = useRoute();
  const snap = useSnapshot();
  const pending = snap.status?.counts.pendingReviews ?? snap.reviews.filter((r) => r.state === 'pending').length;

  useKeys(Object.fromEntries(NAV.map((n) => [n.key, () => navigate(n.route)])));

  useEffect(() => {
    document.title = pending > 0 ? `(${pending}) Airlock` : 'Airlock';
  }, [pending]);

  return (
    <div className="app">
      <nav className="nav" aria-label="Sections">
        <div className="brand">Airlock</div>
        {NAV.map((n) => (
          <a key={n.label} href={routeHref(n.route)} className={`nav-link${route.view === n.route.view ? ' active' : ''}`} aria-current={route.view === n.route.view ? 'page' : undefined}>
            {n.label}
            {n.route.view === 'reviews' && pending > 0 ? <span className="count">{pending}</span> : null}
          </a>
        ))}
        <span className="spacer" />
        <span className="muted small nav-foot">{transport === 'ipc' ? 'desktop' : 'web console'}</span>
      </nav>
      <main className="main">
        <RecordingBanner />
        <ErrorBanner />
        {route.view === 'reviews' ? <ReviewsView selectedId={route.id} /> : null}
        {route.view === 'activity' ? <ActivityView /> : null}
        {route.view === 'agents' ? <AgentsView /> : null}
        {route.view === 'status' ? <StatusPanel transport={transport} /> : null}
      </main>
    </div>
  );
}
