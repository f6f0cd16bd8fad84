// Seals: the exchanges table made tamper-evident through the audit chain (main/store/seals.ts).
// Every test edits a real SQLite file the way someone with access to the data dir could, and shows
// that `verify` names the seal whose rows changed, or that Airlock's own changes keep every seal whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sqlite } from '../../main/store/sqlite';
import { openStore } from '../../main/store';
import type { AuditEvent, Store } from '../../main/store';
import { SEAL_ACTION, type SealDetails } from '../../main/store/seals';
import { exchange, makeClock, tempDirs } from './helpers';

const Database = sqlite();
const dirs = tempDirs('airlock-seals-');

async function fresh(opts: Parameters<typeof openStore>[1] = {}): Promise<{ file: string; store: Store }> {
  const file = join(await dirs(), 'airlock.db');
  return { file, store: openStore(file, { now: makeClock('2026-01-02T00:00:00.000Z').now, ...opts }) };
}

/** Records n exchanges with ids from nextId(), bodies of several kinds; returns their ids. */
function recordSome(store: Store, n: number, over: (i: number) => Partial<Parameters<typeof exchange>[1]> = () => ({})): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = store.exchanges.nextId();
    ids.push(id);
    store.exchanges.record(exchange(id, {
      path: `/o/r${i}.git/info/refs`,
      // every 5th a body over 16 KiB (stored gzip-compressed); every 7th one cut at the cap
      responseBody: i % 5 === 0 ? Buffer.from('x'.repeat(40_000)) : Buffer.from(`answer ${i}`),
      ...(i % 7 === 0 ? { requestBodyComplete: false, requestBytes: 5000, requestBodySha256: 'ab'.repeat(32) } : {}),
      // text SQLite stores otherwise than JavaScript holds it (a lone surrogate becomes U+FFFD), and non-ASCII
      ...(i % 6 === 1 ? { error: `upstream said \ud800 in ${i}`, requestHeaders: { host: 'github.com', 'x-note': 'grüße "quoted"' } } : {}),
      ...over(i),
    }));
  }
  return ids;
}

function seals(store: Store): (AuditEvent & { details: SealDetails })[] {
  return store.audit.list().filter((e) => e.action === SEAL_ACTION) as (AuditEvent & { details: SealDetails })[];
}

/** Opens the file, runs f, closes it. */
function withStore<T>(file: string, f: (s: Store) => T): T {
  const s = openStore(file);
  try {
    return f(s);
  } finally {
    s.close();
  }
}

function onFile<T>(file: string, f: (db: InstanceType<typeof Database>) => T): T {
  const db = new Database(file);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

test('a seal covers what was written; verify reads every row again and says so', async () => {
  const { store } = await fresh();
  const ids = recordSome(store, 30);
  store.exchanges.seal();
  const [s, ...more] = seals(store);
  assert.equal(more.length, 0, 'one day of rows: one seal');
  assert.deepEqual({ from: s!.details.from, to: s!.details.to, count: s!.details.count, open: s!.details.open, closed: s!.details.closed },
    { from: 0, to: Number(ids.at(-1)), count: 30, open: [], closed: [] });
  assert.match(s!.details.sha256, /^[0-9a-f]{64}$/);
  store.exchanges.seal();
  assert.equal(seals(store).length, 1, 'nothing new: no second seal');
  const v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /; 30 exchanges match their seal$/);
  assert.deepEqual(v.exchanges, { seals: 1, sealedRows: 30, sealedSessions: 0, unsealed: 0, prunedSeals: 0, partlyPrunedSeals: 0, problems: [] });
  store.close();
});

test('every kind of change to a sealed row fails verify, naming the range and the seal; the chain itself still holds', async () => {
  const edits: [string, string][] = [
    ['the path', "UPDATE exchanges SET path = '/o/innocent.git/info/refs' WHERE id = :id"],
    ['the status', 'UPDATE exchanges SET status = 403 WHERE id = :id'],
    ['the agent', "UPDATE exchanges SET agent = 'bob' WHERE id = :id"],
    ['a header', `UPDATE exchanges SET request_headers = '{"host":"example.com"}' WHERE id = :id`],
    ['the verdict', "UPDATE exchanges SET verdict = 'allow' WHERE id = :id"],
    ['a stored body', "UPDATE exchanges SET response_body = CAST('answer 9!' AS BLOB) WHERE id = :id"],
    ['a compressed body', 'UPDATE exchanges SET response_body = zeroblob(20) WHERE id = :id - 9'],
    ['a body dropped by hand', 'UPDATE exchanges SET response_body = NULL WHERE id = :id'],
    ['the hash of a body cut at the cap', "UPDATE exchanges SET request_body_sha256 = 'cd' || substr(request_body_sha256, 3) WHERE id = :id - 9"],
    ['a timing', 'UPDATE exchanges SET total_ms = 1 WHERE id = :id'],
  ];
  for (const [what, sql] of edits) {
    const { file, store } = await fresh();
    const ids = recordSome(store, 20);
    store.exchanges.seal();
    const seq = seals(store)[0]!.seq;
    store.close();
    const changed = onFile(file, (db) => db.prepare(sql).run({ id: Number(ids[9]) }).changes);
    assert.equal(changed, 1, `${what}: the edit applied`);
    const again = openStore(file);
    const v = again.audit.verify();
    again.close();
    assert.equal(v.ok, false, `${what}: ${v.message}`);
    assert.match(v.message, new RegExp(`exchanges ${ids[0]}–${ids[19]} \\(sealed at seq ${seq}\\): a row was changed since the seal`), what);
    assert.match(v.message, /\(The chain itself holds: ok \d+ events/, what);
    assert.equal(v.brokenAt, null, `${what}: no event of the chain is broken`);
  }
});

test('a sealed row deleted, or a row added inside a sealed range, fails verify; rows recorded after the seal are only counted', async () => {
  const { file, store } = await fresh();
  const ids = recordSome(store, 10);
  store.exchanges.seal();
  recordSome(store, 3); // after the seal
  store.close(); // seals them too
  const [first, second] = withStore(file, seals);
  assert.equal(second?.details.count, 3, 'close sealed what came after the first seal');

  onFile(file, (db) => db.prepare('DELETE FROM exchanges WHERE id = ?').run(Number(ids[4])));
  let s = openStore(file);
  let v = s.audit.verify();
  s.close();
  assert.equal(v.ok, false);
  assert.match(v.message, new RegExp(`exchanges 1–${ids[9]} \\(sealed at seq ${first!.seq}\\): 9 rows where the seal counted 10 \\(rows deleted\\)`));

  // put it back as it was: the seal holds again; then a forged row in a gap of the range
  // ids are reserved in blocks: a gateway that stops leaves the rest of its block unused, a gap in the range
  const { file: f2, store: s2 } = await fresh();
  const ids2 = recordSome(s2, 5);
  s2.close();
  const later = withStore(f2, (x) => recordSome(x, 5));
  const gap = Number(ids2.at(-1)) + 1;
  assert.ok(gap < Number(later[0]) - 1, `a gap between ${ids2.at(-1)} and ${later[0]}`);
  assert.equal(withStore(f2, seals)[1]?.details.from, Number(ids2.at(-1)), 'the second gateway\'s seal covers the gap');
  onFile(f2, (db) => {
    const row = db.prepare('SELECT * FROM exchanges WHERE id = ?').get(Number(later[0])) as Record<string, unknown>;
    row.id = gap;
    row.path = '/o/forged.git/info/refs';
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO exchanges (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  });
  s = openStore(f2);
  v = s.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, /6 rows where the seal counted 5 \(rows added\)/);
  onFile(f2, (db) => db.prepare('DELETE FROM exchanges WHERE id = ?').run(gap));
  v = s.audit.verify();
  assert.equal(v.ok, true, v.message);
  // a row after the last seal is not covered yet: counted, not an error
  recordSome(s, 2);
  s.exchanges.flush();
  v = s.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /10 exchanges match their 2 seals \(2 exchanges recorded since the last seal, not sealed yet\)$/);
  s.close();
});

test('an exchange in flight when a seal is made is left open, and the next seal covers it once written', async () => {
  const { file, store } = await fresh();
  const early = store.exchanges.nextId(); // started, still running (a long download, a held push)
  const ids = recordSome(store, 4);
  store.exchanges.seal();
  const [s1] = seals(store);
  assert.deepEqual(s1!.details.open, [Number(early)]);
  assert.equal(s1!.details.count, 4);
  let v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.equal(v.exchanges?.unsealed, 0, 'not written yet: nothing unsealed');

  store.exchanges.record(exchange(early, { path: '/slow' }));
  store.exchanges.flush();
  v = store.audit.verify();
  assert.match(v.message, /\(1 exchange recorded since the last seal, not sealed yet\)/, 'written after its seal: counted as not sealed yet');
  store.exchanges.seal();
  const s2 = seals(store)[1]!;
  assert.deepEqual({ from: s2.details.from, to: s2.details.to, closed: s2.details.closed, count: s2.details.count },
    { from: Number(ids.at(-1)), to: Number(ids.at(-1)), closed: [Number(early)], count: 1 });
  v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /5 exchanges match their 2 seals$/);
  store.close();

  onFile(file, (db) => db.prepare("UPDATE exchanges SET path = '/fast' WHERE id = ?").run(Number(early)));
  const again = openStore(file);
  v = again.audit.verify();
  again.close();
  assert.match(v.message, new RegExp(`exchanges no new range \\(sealed at seq ${s2.seq}\\): a row was changed`));
});

test('after a restart, a row written for an id an earlier gateway left open (a held push restored) is sealed by the next gateway', async () => {
  const { file, store } = await fresh();
  const held = store.exchanges.nextId();
  recordSome(store, 3);
  store.close(); // the seal at shutdown leaves `held` open: the process stops with it in flight
  onFile(file, (db) => {
    // what recovery does at the next start: the exchange row restored from its review
    const row = db.prepare('SELECT * FROM exchanges ORDER BY id LIMIT 1').get() as Record<string, unknown>;
    Object.assign(row, { id: Number(held), path: '/o/r.git/git-receive-pack', request_body: null, response_body: null });
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO exchanges (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  });
  const next = openStore(file);
  recordSome(next, 1);
  next.close();
  const s = openStore(file);
  const all = seals(s);
  assert.deepEqual(all.map((e) => e.details.closed), [[], [Number(held)]]);
  const v = s.audit.verify();
  s.close();
  assert.equal(v.ok, true, v.message);
  assert.equal(v.exchanges?.sealedRows, 5);
});

test('a seal never spans two days; retention deletes whole seals, says how far, and verify leaves pruned seals out', async () => {
  const { file, store } = await fresh();
  const day = (d: number, i: number) => `2026-01-0${d}T0${i % 10}:00:00.000Z`;
  recordSome(store, 3, (i) => ({ startedAt: day(1, i) }));
  recordSome(store, 4, (i) => ({ startedAt: day(2, i) }));
  recordSome(store, 2, (i) => ({ startedAt: day(3, i) }));
  store.exchanges.seal();
  assert.deepEqual(seals(store).map((e) => e.details.count), [3, 4, 2], 'one seal per day of rows');

  // 30 days kept, on Feb 1 at 00:00: Jan 1 is older; Jan 2 from 00:00 is not
  const n = store.exchanges.prune(30, new Date('2026-02-01T00:00:00.000Z'));
  assert.equal(n, 3);
  const ev = store.audit.head()!;
  assert.equal(ev.action, 'retention.pruned');
  assert.equal((ev.details as { throughId: number }).throughId, seals(store)[0]!.details.to);
  let v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /6 exchanges match their 3 seals \(1 seal of exchanges retention deleted, not compared\)$/);
  store.close();

  onFile(file, (db) => {
    const row = db.prepare('SELECT * FROM exchanges ORDER BY id LIMIT 1').get() as Record<string, unknown>;
    row.id = 1;
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO exchanges (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  });
  const again = openStore(file);
  v = again.audit.verify();
  again.close();
  assert.equal(v.ok, false);
  assert.match(v.message, /1 exchange with ids up to \d+, where retention deleted every row \(rows added\)/);
});

test('bodies dropped for the body budget keep their part of the seal; a dropped body\'s part edited by hand does not', async () => {
  const { file, store } = await fresh();
  recordSome(store, 12);
  store.exchanges.seal();
  store.exchanges.limitBodies(100);
  await store.exchanges.bodiesPruned();
  const dropped = onFile(file, (db) => (db.prepare('SELECT count(*) AS n FROM exchanges WHERE response_body IS NULL AND bodies_sealed IS NOT NULL').get() as { n: number }).n);
  assert.ok(dropped >= 5, `bodies were dropped (${dropped})`);
  let v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /12 exchanges match their seal$/);
  store.close();
  onFile(file, (db) => db.prepare("UPDATE exchanges SET bodies_sealed = 'x' || substr(bodies_sealed, 2) WHERE bodies_sealed IS NOT NULL AND id = (SELECT min(id) FROM exchanges)").run());
  const again = openStore(file);
  v = again.audit.verify();
  again.close();
  assert.equal(v.ok, false);
  assert.match(v.message, /a row was changed since the seal/);
});

test('in the background, a seal is made in slices while exchanges keep being recorded; with the worker writer too', async () => {
  for (const writer of ['inline', 'worker'] as const) {
    const { store } = await fresh({ writer, seal: { everyMs: 50, sliceRows: 40 } });
    const ids = recordSome(store, 2000).map(Number);
    const deadline = Date.now() + 10_000;
    while (seals(store).length === 0 && Date.now() < deadline) {
      ids.push(...recordSome(store, 2).map(Number)); // traffic goes on while the seal is hashed
      await new Promise((r) => setImmediate(r));
    }
    const [s] = seals(store);
    assert.ok(s, `${writer}: a seal was made by the timer`);
    assert.ok(s.details.count >= 2000, `${writer}: it covers what was written when it began (${s.details.count})`);
    // 2000+ rows, 40 per turn: 50+ turns between the seal's plan and its event, 2 exchanges recorded in each
    const during = ids.filter((id) => id > s.details.to).length;
    assert.ok(during >= 60, `${writer}: exchanges were recorded while the seal was hashed in slices (${during})`);
    store.close();
    const v = withStore(store.file, (x) => x.audit.verify());
    assert.equal(v.ok, true, `${writer}: ${v.message}`);
    assert.equal(v.exchanges?.unsealed, 0, `${writer}: close sealed the rest`);
  }
});

test('a store that only reads never seals', async () => {
  const { file, store } = await fresh();
  recordSome(store, 3);
  store.exchanges.flush();
  // another process writing the file (as the gateway does) while a CLI reads it
  const reader = openStore(file);
  assert.equal(reader.exchanges.count(), 3);
  reader.close();
  assert.equal(seals(store).length, 0, 'the reader closed without sealing');
  store.close();
  assert.equal(withStore(file, seals).length, 1);
});

test('verifyInBackground: the same verdict, read from a snapshot of its own, a slice per turn of the event loop', async () => {
  const { file, store } = await fresh();
  recordSome(store, 3000);
  store.exchanges.seal();
  let turns = 0;
  let counting = true;
  const tick = (): void => {
    turns++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  const bg = await store.audit.verifyInBackground();
  counting = false;
  assert.deepEqual(bg, store.audit.verify());
  assert.equal(bg.ok, true, bg.message);
  assert.match(bg.message, /3000 exchanges match their seal$/);
  assert.ok(turns >= 3000 / 500, `the event loop turned while the rows were read (${turns} turns)`);

  // a row edited: the same failure either way; rows deleted while it runs (a prune) do not show in its snapshot
  onFile(file, (db) => db.prepare("UPDATE exchanges SET path = '/x' WHERE id = (SELECT max(id) FROM exchanges)").run());
  const edited = store.audit.verify();
  assert.equal(edited.ok, false);
  const running = store.audit.verifyInBackground();
  onFile(file, (db) => db.prepare('DELETE FROM exchanges WHERE id BETWEEN 2000 AND 2100').run()); // after its snapshot began, before it reads them
  assert.deepEqual(await running, edited);
  store.close();
});

test('sessions are sealed once they end: one changed or deleted afterwards fails verify; one still open waits for the next seal', async () => {
  const { file, store } = await fresh();
  const session = (id: string, via: string) => store.sessions.start({ id, agent: 'alice', clientAddress: '127.0.0.1:5000', startedAt: '2026-01-02T00:00:00.000Z', token: 'abcdef012345', via });
  session('s-a', 'run claude (pid 1)');
  session('s-b', 'run aider (pid 2)');
  session('s-c', 'run codex (pid 3)');
  recordSome(store, 3, () => ({ sessionId: 's-a' }));
  store.sessions.end('s-a', '2026-01-02T00:01:00.000Z');
  store.sessions.end('s-b', '2026-01-02T00:02:00.000Z');
  store.exchanges.seal();
  assert.deepEqual(seals(store)[0]!.details.sessions?.ids, ['s-a', 's-b'], 'the ended sessions, not the open one');
  store.sessions.end('s-c', '2026-01-02T00:03:00.000Z');
  store.exchanges.seal();
  const second = seals(store)[1]!;
  assert.deepEqual({ ids: second.details.sessions?.ids, from: second.details.from, to: second.details.to }, { ids: ['s-c'], from: second.details.from, to: second.details.from });
  let v = store.audit.verify();
  assert.equal(v.ok, true, v.message);
  assert.match(v.message, /; 3 exchanges and 3 sessions match their 2 seals$/);
  store.close();

  onFile(file, (db) => db.prepare("UPDATE sessions SET via = 'run claude (pid 9)' WHERE id = 's-b'").run());
  v = withStore(file, (x) => x.audit.verify());
  assert.equal(v.ok, false);
  assert.match(v.message, new RegExp(`sessions sealed at seq ${withStore(file, seals)[0]!.seq}: a session was changed since the seal`));
  onFile(file, (db) => db.prepare("DELETE FROM sessions WHERE id = 's-c'").run());
  v = withStore(file, (x) => x.audit.verify());
  assert.match(v.message, /sessions sealed at seq \d+: 1 of 1 deleted \(s-c\)/);
});

// ---- what a red-team session found (docs/decisions.md, "Seals, attacked"): each edit fails verify now

test('the counter of what is sealed moved ahead, or ids taken out of seal_open: the sealer goes by the chain, and verify names a seal that starts past a gap', async () => {
  const { file, store } = await fresh();
  const ids = recordSome(store, 5);
  store.exchanges.seal();
  const mine = recordSome(store, 3); // what the agent wants gone
  onFile(file, (db) => db.prepare("UPDATE counters SET next = 1000000000000000 WHERE name = 'sealed-through'").run());
  store.exchanges.seal();
  const last = seals(store).at(-1)!.details;
  assert.deepEqual([last.from, last.to, last.count], [Number(ids.at(-1)), Number(mine.at(-1)), 3], 'sealed where the chain says the last seal ended');
  onFile(file, (db) => db.prepare('DELETE FROM exchanges WHERE id >= ?').run(Number(mine[0])));
  let v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, /: 0 rows where the seal counted 3 \(rows deleted\)/);
  store.close();

  // A seal event that starts past a gap (written by hand, or by a sealer that trusted the table).
  const b = await fresh();
  recordSome(b.store, 2);
  b.store.exchanges.seal();
  const to = seals(b.store).at(-1)!.details.to;
  b.store.audit.append({ actor: 'system', action: SEAL_ACTION, subject: 'exchanges', details: { from: 1e15, to: 1e15, open: [], closed: [], count: 0, sha256: createHash('sha256').digest('hex') } });
  v = b.store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, new RegExp(`seal seq \\d+ starts after exchange 1000000000000000, but the seals before it end at ${to}: exchanges ${to + 1}–1000000000000000 were never sealed`));
  b.store.close();
});

test('a seal that closes very many ids is checked without running out of stack', async () => {
  const { store } = await fresh();
  recordSome(store, 3);
  store.exchanges.seal();
  const closed = Array.from({ length: 150_000 }, (_, i) => i + 1);
  const to = seals(store).at(-1)!.details.to;
  store.audit.append({ actor: 'system', action: SEAL_ACTION, subject: 'exchanges', details: { from: to, to, open: [], closed, count: 0, sha256: createHash('sha256').digest('hex') } });
  const v = store.audit.verify();
  assert.equal(v.ok, false, 'ids no seal left open, closed: tampering');
  assert.match(v.message, /covers exchange \d+, which no earlier seal left open/);
  store.close();
});

test('an in-flight id taken out of seal_open is still covered once its row is written (the sealer goes by the chain)', async () => {
  const { file, store } = await fresh();
  recordSome(store, 2);
  const early = store.exchanges.nextId(); // in flight
  recordSome(store, 2);
  store.exchanges.seal();
  assert.deepEqual(seals(store).at(-1)!.details.open, [Number(early)]);
  onFile(file, (db) => db.prepare('DELETE FROM seal_open').run());
  store.exchanges.record(exchange(early, { path: '/the-held-one' }));
  store.exchanges.seal();
  assert.deepEqual(seals(store).at(-1)!.details.closed, [Number(early)]);
  onFile(file, (db) => db.prepare("UPDATE exchanges SET path = '/nothing' WHERE id = ?").run(Number(early)));
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, /a row was changed since the seal/);
  store.close();
});

test('a trigger planted in the record (rows deleted as they are written, a session rewritten) fails verify; so does a missing guard', async () => {
  const { file, store } = await fresh();
  recordSome(store, 3);
  store.exchanges.seal();
  onFile(file, (db) => {
    db.exec(`CREATE TRIGGER hide_mine AFTER INSERT ON exchanges WHEN NEW.host = 'evil.example' BEGIN DELETE FROM exchanges WHERE id = NEW.id; END`);
    db.exec(`CREATE VIEW mine AS SELECT id FROM exchanges`);
  });
  recordSome(store, 2, () => ({ host: 'evil.example' }));
  store.exchanges.seal();
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, /^the record's schema was changed: a trigger Airlock did not create \("hide_mine" on exchanges\): it can change rows as they are written; a view Airlock did not create \("mine" on mine\)/);
  onFile(file, (db) => db.exec('DROP TRIGGER hide_mine; DROP VIEW mine; DROP TRIGGER audit_events_no_delete'));
  const gone = store.audit.verify();
  assert.equal(gone.ok, false);
  assert.match(gone.message, /the audit log's append-only trigger "audit_events_no_delete" is gone/);
  store.close();
});

test('a session kept out of its seal (its sealed flag set by hand) fails verify once a later seal was made', async () => {
  const { file, store } = await fresh();
  store.sessions.start({ id: 's-kept', agent: 'bot', clientAddress: '127.0.0.1', startedAt: '2026-01-02T00:00:00.000Z' });
  store.sessions.start({ id: 's-fair', agent: 'bot', clientAddress: '127.0.0.1', startedAt: '2026-01-02T00:00:00.000Z' });
  store.sessions.end('s-kept', '2026-01-01T23:59:59.000Z');
  store.sessions.end('s-fair', '2026-01-01T23:59:59.000Z');
  recordSome(store, 2);
  store.exchanges.flush();
  onFile(file, (db) => db.prepare("UPDATE sessions SET sealed = 1 WHERE id = 's-kept'").run());
  store.exchanges.seal();
  recordSome(store, 1);
  store.exchanges.seal();
  recordSome(store, 1);
  store.exchanges.seal();
  onFile(file, (db) => db.prepare("UPDATE sessions SET via = 'forged' WHERE id = 's-kept'").run());
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, /1 session ended before seal seq \d+ but no seal covers it \(s-kept\)/);
  store.close();
});

test('retention never deletes rows changed since their seal (backdated to look old, or a boundary faked in exchange_seals); a prune event not at a seal\'s end fails verify', async () => {
  const { file, store } = await fresh();
  const day = (d: number, i: number) => `2026-01-0${d}T0${i % 10}:00:00.000Z`;
  recordSome(store, 3, (i) => ({ startedAt: day(1, i) }));
  const today = recordSome(store, 4, (i) => ({ startedAt: day(5, i) }));
  store.exchanges.seal();
  // The agent backdates today's rows (its own) so that the next prune would delete them as old.
  onFile(file, (db) => db.prepare("UPDATE exchanges SET started_at = '2000-01-01T00:00:00.000Z' WHERE id >= ?").run(Number(today[0])));
  // 30 days kept, on Feb 3: Jan 1 is old, Jan 5 is not (but now looks it).
  const n = store.exchanges.prune(30, new Date('2026-02-03T00:00:00.000Z'));
  assert.equal(n, 0, 'nothing deleted');
  const refused = store.audit.head()!;
  assert.equal(refused.action, 'retention.refused');
  assert.match((refused.details as { reason: string }).reason, /^exchanges \d+–\d+ no longer match their seal \(seq \d+\): nothing was deleted/);
  assert.equal(store.exchanges.count(), 7, 'the evidence is kept');
  assert.equal(store.audit.verify().ok, false);
  store.close();

  // A boundary faked inside a seal (exchange_seals is only a table): the prune goes by the chain's seals.
  const b = await fresh();
  recordSome(b.store, 3, (i) => ({ startedAt: day(1, i) }));
  const kept = recordSome(b.store, 5, (i) => ({ startedAt: day(5, i) }));
  b.store.exchanges.seal();
  onFile(b.file, (db) => {
    db.prepare('UPDATE exchanges SET started_at = ? WHERE id = ?').run('2000-01-01T00:00:00.000Z', Number(kept[0]));
    db.prepare('INSERT OR REPLACE INTO exchange_seals (upto, seq) VALUES (?, 1)').run(Number(kept[0]));
  });
  assert.equal(b.store.exchanges.prune(30, new Date('2026-02-03T00:00:00.000Z')), 3, 'only the old seal goes: the faked boundary is not a seal of the chain');
  assert.equal(b.store.exchanges.count(), 5);
  // An event appended by hand that deletes to the middle of a seal.
  b.store.audit.append({ actor: 'system', action: 'retention.pruned', subject: 'exchanges', details: { count: 1, olderThanDays: 0, cutoff: '2026-01-20T00:00:00.000Z', throughId: Number(kept[1]) } });
  const v = b.store.audit.verify();
  assert.equal(v.ok, false);
  assert.match(v.message, new RegExp(`retention event seq \\d+ deleted exchanges up to ${kept[1]}, where no earlier seal ends`));
  b.store.close();
});

test('bodies removed by hand, as the body budget would leave them, fail verify: past its reach, with their hashes changed, or on a row that had none', async () => {
  const { file, store } = await fresh();
  const ids = recordSome(store, 12, (i) => (i === 11 ? { responseBody: null, responseBytes: 0 } : {}));
  store.exchanges.seal();
  const stored = onFile(file, (db) => (db.prepare('SELECT sum(length(request_body)) + sum(length(response_body)) AS n FROM exchanges').get() as { n: number }).n);
  store.exchanges.limitBodies(Math.floor(stored * 0.6)); // the oldest go, not all
  await store.exchanges.bodiesPruned();
  const budget = store.audit.list().filter((e) => e.action === 'retention.pruned' && e.subject === 'bodies').at(-1)!;
  const through = (budget.details as { throughId: number }).throughId;
  assert.ok(through >= Number(ids[4]) && through < Number(ids[10]), `the budget dropped up to ${through}`);
  assert.equal(store.audit.verify().ok, true);
  store.close();

  /** What the body budget writes, done by hand to row `id`: the part of its seal kept, the bodies gone. */
  const dropByHand = (db: InstanceType<typeof Database>, id: number, sha?: string) => {
    const r = db.prepare('SELECT * FROM exchanges WHERE id = ?').get(id) as Record<string, unknown>;
    const hex = (b: unknown) => (b ? createHash('sha256').update(b as Buffer).digest('hex') : '-');
    const part = `${hex(r.request_body)}/${hex(r.response_body)}:${r.request_body_encoding ?? ''}:${r.request_body_complete}:${r.request_body_sha256 ?? ''}:${r.response_body_encoding ?? ''}:${r.response_body_complete}:${r.response_body_sha256 ?? ''}`;
    const kept = (b: unknown, enc: unknown, complete: unknown, s: unknown) => (s ?? (b && complete === 1 ? createHash('sha256').update(enc ? gunzipSync(b as Buffer) : (b as Buffer)).digest('hex') : null));
    db.prepare(`UPDATE exchanges SET bodies_sealed = ?, request_body_sha256 = ?, response_body_sha256 = ?,
      request_body_complete = CASE WHEN request_body IS NULL THEN request_body_complete ELSE 0 END,
      response_body_complete = CASE WHEN response_body IS NULL THEN response_body_complete ELSE 0 END,
      request_body = NULL, response_body = NULL, request_body_encoding = NULL, response_body_encoding = NULL WHERE id = ?`)
      .run(part, kept(r.request_body, r.request_body_encoding, r.request_body_complete, r.request_body_sha256),
        sha ?? kept(r.response_body, r.response_body_encoding, r.response_body_complete, r.response_body_sha256), id);
  };
  // 1. Exactly as the budget would, but past where it dropped any.
  const copy1 = join(await dirs(), 'airlock.db');
  copyFileSync(file, copy1);
  onFile(copy1, (db) => dropByHand(db, Number(ids[10])));
  let v = withStore(copy1, (s) => s.audit.verify());
  assert.equal(v.ok, false);
  assert.match(v.message, new RegExp(`the bodies of exchange ${ids[10]} were removed, past where the body budget dropped any \\(up to ${through}\\)`));
  // 2. Inside its reach, with the hash of a dropped (small, uncompressed) response changed to an innocent one.
  assert.ok(through >= Number(ids[1]));
  const copy2 = join(await dirs(), 'airlock.db');
  copyFileSync(file, copy2);
  onFile(copy2, (db) => db.prepare('UPDATE exchanges SET response_body_sha256 = ? WHERE id = ?').run('0'.repeat(64), Number(ids[1])));
  v = withStore(copy2, (s) => s.audit.verify());
  assert.equal(v.ok, false);
  assert.match(v.message, /a row was changed since the seal/);
  // 3. A part put on a row that never had bodies (its meta then changed).
  onFile(file, (db) => db.prepare("UPDATE exchanges SET bodies_sealed = ':' || request_body_encoding, request_body_sha256 = ? WHERE id = ?").run('1'.repeat(64), Number(ids[11])));
  v = withStore(file, (s) => s.audit.verify());
  assert.equal(v.ok, false);
});
