// A small store: API results and pushed events become immutable snapshots,
// read by React through useSyncExternalStore.
import {
  isErrorPayload,
  type AgentView,
  type AirlockClient,
  type AirlockEvent,
  type AuditVerifyView,
  type ErrorPayload,
  type ExchangeView,
  type ExportHarQuery,
  type ReviewView,
  type StatusView,
} from '../../../main/contract';

export const EXCHANGE_PAGE = 500;

export interface Snapshot {
  readonly loaded: boolean;
  /** Why nothing could be loaded (no token, a wrong one, the gateway gone): views say so instead of "nothing yet". */
  readonly unavailable: string | null;
  readonly status: StatusView | null;
  /** Pending first (soonest to expire first), then decided, newest first. */
  readonly reviews: readonly ReviewView[];
  readonly reviewsById: Readonly<Record<string, ReviewView>>;
  /** Newest first. */
  readonly exchanges: readonly ExchangeView[];
  readonly exchangesExhausted: boolean;
  readonly agents: readonly AgentView[];
  readonly audit: AuditVerifyView | null;
  /** The last HAR saved from this window: its file name, size and digest (as its audit event records them). */
  readonly lastExport: { fileName: string; count: number; bytes: number; sha256: string } | null;
  readonly error: (ErrorPayload & { seq: number }) | null;
  /** Keys of operations in flight: 'decide:<id>', 'audit', 'older', 'review:<id>', 'har'. */
  readonly busy: ReadonlySet<string>;
}

const EMPTY: Snapshot = {
  loaded: false,
  unavailable: null,
  status: null,
  reviews: [],
  reviewsById: {},
  exchanges: [],
  exchangesExhausted: false,
  agents: [],
  audit: null,
  lastExport: null,
  error: null,
  busy: new Set(),
};

export function sortReviews(list: Iterable<ReviewView>): ReviewView[] {
  return [...list].sort((a, b) => {
    const ap = a.state === 'pending' ? 0 : 1;
    const bp = b.state === 'pending' ? 0 : 1;
    if (ap !== bp) return ap - bp;
    if (ap === 0) return a.expiresAt.localeCompare(b.expiresAt) || a.id.localeCompare(b.id);
    return (b.decidedAt ?? b.createdAt).localeCompare(a.decidedAt ?? a.createdAt) || b.id.localeCompare(a.id);
  });
}

function toError(err: unknown): ErrorPayload {
  if (isErrorPayload(err)) return { code: err.code, message: err.message };
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}

function byNewest(a: ExchangeView, b: ExchangeView): number {
  return b.startedAt.localeCompare(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export class AirlockStore {
  private snap: Snapshot = EMPTY;
  private readonly listeners = new Set<() => void>();
  private errorSeq = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(readonly client: AirlockClient) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): Snapshot => this.snap;

  private set(patch: Partial<Snapshot>): void {
    this.snap = Object.freeze({ ...this.snap, ...patch });
    for (const l of [...this.listeners]) l();
  }

  private setBusy(key: string, on: boolean): void {
    const busy = new Set(this.snap.busy);
    if (on) busy.add(key);
    else busy.delete(key);
    this.set({ busy });
  }

  private fail(err: unknown): void {
    this.set({ error: { ...toError(err), seq: ++this.errorSeq } });
  }

  dismissError(): void {
    this.set({ error: null });
  }

  private upsertReviews(list: readonly ReviewView[], replace = false): void {
    const byId: Record<string, ReviewView> = replace ? {} : { ...this.snap.reviewsById };
    for (const r of list) byId[r.id] = r;
    this.set({ reviewsById: byId, reviews: sortReviews(Object.values(byId)) });
  }

  private upsertExchange(ex: ExchangeView): void {
    const i = this.snap.exchanges.findIndex((e) => e.id === ex.id);
    const next = i === -1 ? [ex, ...this.snap.exchanges] : this.snap.exchanges.map((e, j) => (j === i ? ex : e));
    if (i === -1 && next.length > 1 && byNewest(next[0]!, next[1]!) > 0) next.sort(byNewest);
    this.set({ exchanges: next });
  }

  private onEvent = (event: AirlockEvent): void => {
    switch (event.type) {
      case 'review':
        this.upsertReviews([event.review]);
        break;
      case 'exchange':
        this.upsertExchange(event.exchange);
        break;
      case 'status':
        this.set({ status: event.status });
        break;
      case 'resync':
        void this.refresh();
        break;
    }
  };

  /** Subscribes to events, then loads everything. */
  async start(): Promise<void> {
    this.unsubscribe ??= this.client.subscribe(this.onEvent);
    await this.refresh();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  async refresh(): Promise<void> {
    const results = await Promise.allSettled([
      this.client.getStatus(),
      this.client.listReviews({}),
      this.client.listExchanges({ limit: EXCHANGE_PAGE }),
      this.client.listAgents(),
    ]);
    const [status, reviews, exchanges, agents] = results;
    const failed = results.find((r) => r.status === 'rejected');
    if (results.every((r) => r.status === 'rejected')) {
      // Nothing loaded: empty lists would read as "nothing held", which may be false.
      this.set({ loaded: false, unavailable: errorMessage(failed!.reason) });
      this.fail(failed!.reason);
      return;
    }
    const patch: { -readonly [K in keyof Snapshot]?: Snapshot[K] } = { loaded: true, unavailable: null };
    if (status.status === 'fulfilled') patch.status = status.value;
    if (exchanges.status === 'fulfilled') {
      patch.exchanges = [...exchanges.value].sort(byNewest);
      patch.exchangesExhausted = exchanges.value.length < EXCHANGE_PAGE;
    }
    if (agents.status === 'fulfilled') patch.agents = agents.value;
    this.set(patch);
    if (reviews.status === 'fulfilled') this.upsertReviews(reviews.value, true);
    if (failed) this.fail(failed.reason);
  }

  async refreshStatus(): Promise<void> {
    try {
      this.set({ status: await this.client.getStatus() });
    } catch {
      /* the next user action reports it */
    }
  }

  async loadReview(id: string): Promise<void> {
    this.setBusy(`review:${id}`, true);
    try {
      this.upsertReviews([await this.client.getReview({ id })]);
    } catch (err) {
      this.fail(err);
    } finally {
      this.setBusy(`review:${id}`, false);
    }
  }

  async loadOlderExchanges(): Promise<void> {
    const last = this.snap.exchanges.at(-1);
    if (!last || this.snap.busy.has('older')) return;
    this.setBusy('older', true);
    try {
      const older = await this.client.listExchanges({ limit: EXCHANGE_PAGE, before: last.id });
      const known = new Set(this.snap.exchanges.map((e) => e.id));
      this.set({
        exchanges: [...this.snap.exchanges, ...older.filter((e) => !known.has(e.id))],
        exchangesExhausted: older.length < EXCHANGE_PAGE,
      });
    } catch (err) {
      this.fail(err);
    } finally {
      this.setBusy('older', false);
    }
  }

  /** Resolves true when the decision was recorded. */
  async decide(id: string, verdict: 'approve' | 'deny', reason: string): Promise<boolean> {
    const key = `decide:${id}`;
    if (this.snap.busy.has(key)) return false;
    this.setBusy(key, true);
    try {
      const trimmed = reason.trim();
      const r = verdict === 'approve'
        ? await this.client.approveReview(trimmed ? { id, reason: trimmed } : { id })
        : await this.client.denyReview({ id, reason: trimmed });
      this.upsertReviews([r]);
      void this.refreshStatus();
      return true;
    } catch (err) {
      this.fail(err);
      // The review may have changed under us (decided elsewhere, expired): show its real state.
      void this.loadReview(id);
      return false;
    } finally {
      this.setBusy(key, false);
    }
  }

  /**
   * Exchanges as a HAR file, saved through `save` (the browser's download, or Electron's save dialog). The
   * gateway builds it from the record and audits the export; too large a one is refused with the CLI command.
   */
  async exportHar(query: Omit<ExportHarQuery, 'via'>, save: (fileName: string, text: string) => void): Promise<void> {
    this.setBusy('har', true);
    try {
      const har = await this.client.exportHar(query);
      save(har.fileName, har.text);
      this.set({ lastExport: { fileName: har.fileName, count: har.count, bytes: har.bytes, sha256: har.sha256 } });
    } catch (err) {
      this.fail(err);
    } finally {
      this.setBusy('har', false);
    }
  }

  /** The chain; with `head` (kept from an earlier verify or export), also that the log still holds it. */
  async verifyAudit(head?: string): Promise<void> {
    this.setBusy('audit', true);
    try {
      this.set({ audit: await this.client.verifyAudit(head === undefined ? {} : { head }) });
    } catch (err) {
      this.fail(err);
    } finally {
      this.setBusy('audit', false);
    }
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === 'object' && e !== null && 'message' in e ? String((e as { message: unknown }).message) : String(e);
}
