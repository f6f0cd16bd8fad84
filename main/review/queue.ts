import { EventEmitter } from 'node:events';
import { AirlockError } from '../contract/errors';
import type { FindingView, RefUpdateView, ReviewState } from '../contract/views';
import type { DecisionChannel } from '../contract/api';
import type { ReviewRecord, Store } from '../store';

export type Decision =
  | { state: 'approved'; by: string; reason: string | null; via?: DecisionChannel }
  | { state: 'denied'; by: string; reason: string; via?: DecisionChannel }
  | { state: 'expired'; by: 'airlock'; reason: string }
  | { state: 'interrupted'; by: 'airlock'; reason: string };

export interface NewReview {
  exchangeId: string;
  agent: string;
  kind: string;
  host: string;
  repo: string;
  bodySha256: string;
  bodyBytes: number;
  bodyPath: string | null;
  summary: string;
  refs: RefUpdateView[];
  findings: FindingView[];
}

interface Pending {
  resolve: (d: Decision) => void;
  timer: NodeJS.Timeout;
}

/**
 * The review queue: pending → approved | denied | expired | interrupted.
 * Exactly one decision per review; a second or late one is refused with a
 * clear message. Every change is written to the store (with an audit event)
 * before anyone is told, and emitted as an event.
 */
export class ReviewQueue {
  private readonly pending = new Map<string, Pending>();
  private readonly events = new EventEmitter();
  private nextId: number;

  constructor(
    private readonly store: Store,
    private readonly timeoutMs: number,
    private readonly now: () => Date = () => new Date(),
    /** Where a decision Airlock took itself but could not record is reported (the log). */
    private readonly onRecordError: (e: Error) => void = (e) => console.error('airlock:', e.message),
  ) {
    let max = 0;
    for (const r of store.reviews.list({})) {
      const n = Number(r.id);
      if (Number.isInteger(n) && n > max) max = n;
    }
    this.nextId = max + 1;
  }

  onChange(listener: (r: ReviewRecord) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  private changed(id: string): void {
    const r = this.store.reviews.get(id);
    if (r) this.events.emit('change', r);
  }

  /** Creates a pending review; the promise settles with its one decision. */
  create(input: NewReview): { review: ReviewRecord; decision: Promise<Decision> } {
    const id = String(this.nextId++);
    const created = this.now();
    const rec: ReviewRecord = {
      id,
      exchangeId: input.exchangeId,
      agent: input.agent,
      kind: input.kind,
      host: input.host,
      repo: input.repo,
      state: 'pending',
      createdAt: created.toISOString(),
      expiresAt: new Date(created.getTime() + this.timeoutMs).toISOString(),
      decidedAt: null,
      decidedBy: null,
      reason: null,
      bodySha256: input.bodySha256,
      bodyBytes: input.bodyBytes,
      bodyPath: input.bodyPath,
      summary: input.summary,
      detail: { refs: input.refs, findings: input.findings },
      upstreamStatus: null,
    };
    // The review and its audit event are written together (a review the chain does not know of, or
    // the reverse, cannot be left behind); if they cannot be written, the push is refused. The store adds
    // `shownSha256` to the event: the SHA-256 of the summary and diff as stored, which verify compares.
    this.store.reviews.insert(rec, {
      actor: `agent:${input.agent}`,
      action: 'review.created',
      subject: id,
      details: { exchangeId: input.exchangeId, host: input.host, repo: input.repo, bodySha256: input.bodySha256, bodyBytes: input.bodyBytes,
        refs: input.refs.map((r) => ({ ref: r.ref, change: r.change, oldOid: r.oldOid, newOid: r.newOid })) },
    });
    const decision = new Promise<Decision>((resolve) => {
      const timer = setTimeout(() => {
        const minutes = Math.round(this.timeoutMs / 60_000);
        this.settle(id, { state: 'expired', by: 'airlock', reason: `no decision within ${minutes >= 1 ? `${minutes} min` : `${Math.round(this.timeoutMs / 1000)} s`}` });
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, timer });
    });
    this.changed(id);
    return { review: this.store.reviews.get(id)!, decision };
  }

  /** `via`: the channel the decision came through (cli, web console, desktop), recorded with it. */
  approve(id: string, by: string, reason?: string | null, via?: DecisionChannel): ReviewRecord {
    return this.decide(id, { state: 'approved', by, reason: reason?.trim() || null, ...(via ? { via } : {}) });
  }

  deny(id: string, by: string, reason: string, via?: DecisionChannel): ReviewRecord {
    const r = (reason ?? '').trim();
    if (!r) throw new AirlockError('bad-request', 'a denial needs a reason (the agent sees it in its git output)');
    return this.decide(id, { state: 'denied', by, reason: r, ...(via ? { via } : {}) });
  }

  /** The agent went away while its push was held. */
  interrupt(id: string, reason: string): void {
    if (this.pending.has(id)) this.settle(id, { state: 'interrupted', by: 'airlock', reason });
  }

  private decide(id: string, d: Decision): ReviewRecord {
    const rec = this.store.reviews.get(id);
    if (!rec) throw new AirlockError('not-found', `no review with id ${id}`);
    if (rec.state !== 'pending' || !this.pending.has(id)) {
      const who = rec.decidedBy ? ` by ${rec.decidedBy}` : '';
      throw new AirlockError('conflict', `review ${id} is already ${rec.state}${who}; a review takes one decision`);
    }
    this.settle(id, d);
    return this.store.reviews.get(id)!;
  }

  /**
   * Records a decision (the review's new state and its audit event, in one transaction), then tells
   * the waiting push. A reviewer's decision that cannot be recorded is not taken: the caller gets the
   * error and the push stays held. A decision Airlock takes itself (expiry, the agent leaving, shutdown)
   * rejects the push even so (never forwarded), and is logged: the record still says pending, which
   * the next start marks interrupted.
   */
  private settle(id: string, d: Decision): void {
    const p = this.pending.get(id);
    if (!p) return;
    const at = this.now().toISOString();
    try {
      // The exchange that carried the push, and the channel of a person's decision, are in the chain too;
      // and the decision's time as the row stores it (the event's own `at` is the log's clock, taken later).
      const exchangeId = this.store.reviews.get(id)?.exchangeId ?? null;
      const via = 'via' in d && d.via ? { via: d.via } : {};
      this.store.reviews.update(id, { state: d.state, decidedAt: at, decidedBy: d.by, reason: d.reason },
        { actor: d.by, action: `review.${d.state}`, subject: id, details: { reason: d.reason, exchangeId, decidedAt: at, ...via } });
    } catch (e) {
      const why = (e as Error).message;
      if (d.by !== 'airlock') {
        throw new AirlockError('unavailable', `Airlock could not record this decision, so it did not take it (${why}); review ${id} stays pending: decide again once the record can be written.`);
      }
      this.onRecordError(new Error(`review ${id}: the push was ${d.state} (${d.reason}) but this could not be recorded: ${why}`));
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.changed(id);
    p.resolve(d);
  }

  /**
   * Records what upstream answered after an approved push was forwarded: its HTTP status, and what it
   * did with the refs (`result`: 'ok', or what it refused; null when its answer carried no report).
   */
  forwarded(id: string, upstreamStatus: number, detail: string, result: string | null = null): void {
    try {
      this.store.reviews.update(id, { upstreamStatus, upstreamResult: result }, { actor: 'airlock', action: 'review.forwarded', subject: id, details: { upstreamStatus, result, detail } });
    } catch (e) {
      this.onRecordError(new Error(`review ${id}: forwarded (upstream answered ${upstreamStatus}) but this could not be recorded: ${(e as Error).message}`));
    }
    this.changed(id);
  }

  list(state?: ReviewState): ReviewRecord[] {
    return this.store.reviews.list({ state });
  }

  get(id: string): ReviewRecord | null {
    return this.store.reviews.get(id);
  }

  /** Denies every pending review on shutdown so no agent waits on a dead gateway; returns how many there were. */
  shutdown(): number {
    const ids = [...this.pending.keys()];
    for (const id of ids) this.settle(id, { state: 'interrupted', by: 'airlock', reason: 'Airlock shut down' });
    return ids.length;
  }
}
