import { createContext, useContext, useSyncExternalStore } from 'react';
import type { AirlockStore, Snapshot } from './store';

export const StoreContext = createContext<AirlockStore | null>(null);

export function useAirlock(): AirlockStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('StoreContext missing');
  return store;
}

export function useSnapshot(): Snapshot {
  const store = useAirlock();
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}

// One shared 1 Hz clock for ages and countdowns.
let now = Date.now();
const clockListeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;
function subscribeClock(l: () => void): () => void {
  clockListeners.add(l);
  timer ??= setInterval(() => {
    now = Date.now();
    for (const f of clockListeners) f();
  }, 1000);
  return () => {
    clockListeners.delete(l);
    if (clockListeners.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}
export function useNow(): number {
  return useSyncExternalStore(subscribeClock, () => now);
}

// Hash routes: #/reviews, #/reviews/<id>, #/activity, #/agents, #/status.
export type Route =
  | { view: 'reviews'; id: string | null }
  | { view: 'activity' }
  | { view: 'agents' }
  | { view: 'status' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  switch (parts[0]) {
    case 'activity':
      return { view: 'activity' };
    case 'agents':
      return { view: 'agents' };
    case 'status':
      return { view: 'status' };
    default: {
      let id: string | null = null;
      try {
        id = parts[0] === 'reviews' && parts[1] ? decodeURIComponent(parts[1]) : null;
      } catch {
        id = null;
      }
      return { view: 'reviews', id };
    }
  }
}

export function routeHref(route: Route): string {
  return route.view === 'reviews' && route.id ? `#/reviews/${encodeURIComponent(route.id)}` : `#/${route.view}`;
}

export function navigate(route: Route): void {
  const href = routeHref(route);
  if (window.location.hash !== href) window.location.hash = href;
}

function subscribeHash(l: () => void): () => void {
  window.addEventListener('hashchange', l);
  return () => window.removeEventListener('hashchange', l);
}
export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribeHash, () => window.location.hash);
  return parseRoute(hash);
}
