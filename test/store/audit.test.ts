import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sqlite } from '../../main/store/sqlite';
import { exportAudit, GENESIS_HASH, hashEvent, parseAuditExport, parseHeadOption, verifyEvents, type AuditEvent } from '../../main/store';
import { duplicateKey } from '../../main/store/audit';
import { AirlockError } from '../../main/contract/errors';
import { tempStore, type TempStore } from './helpers';

const Database = sqlite();

const open: TempStore[] = [];
after(async () => {
  for (const t of open) await t.cleanup();
});

/** A store with `n` events, one second apart, with awkward details (quotes, commas, newlines, nested keys). */
async function withEvents(n = 10) {
  const t = await tempStore('airlock-audit-');
  open.push(t);
  for (let i = 1; i <= n; i++) {
    t.store.audit.append({
      actor: i % 2 ? 'system' : 'human:ana',
      action: 'review.decided',
      subject: `r${i}`,
      details: { z: i, a: { text: `say "hi", then\r\nbye #${i}`, list: [i, null, true] } },
    });
    t.clock.advance(1000);
  }
  return t;
}

/** A second connection, as an attacker with the file: drops the append-only triggers first. */
function tamper(file: string, sql: string) {
  const db = new Database(file);
  const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger'").all() as Array<{ sql: string }>;
  db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;');
  db.exec(sql);
  for (const t of triggers) db.exec(t.sql); // put back, as a careful attacker would (verify names a missing one)
  db.close();
}

test('append builds a hash chain and verify says ok', async () => {
  const { store } = await withEvents(5);
  const events = store.audit.list();
  assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5]);
  assert.equal(events[0]!.prevHash, GENESIS_HASH);
  for (let i = 1; i < events.length; i++) assert.equal(events[i]!.prevHash, events[i - 1]!.hash);
  for (const e of events) assert.equal(e.hash, hashEvent(e));
  assert.equal(events[0]!.at, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(events[1]!.details, { a: { list: [2, null, true], text: 'say "hi", then\r\nbye #2' }, z: 2 });
  const head = store.audit.head()!;
  assert.equal(head.seq, 5);
  const v = store.audit.verify();
  assert.deepEqual(v, { ok: true, events: 5, head: head.hash, brokenAt: null, message: `ok 5 events, head ${head.hash}` });
  const e = store.audit.append({ actor: 'a', action: 'b', subject: 'c' });
  assert.equal(e.details, null);
  assert.equal(store.audit.list({ since: '2026-01-01T00:00:03.000Z' }).map((x) => x.seq).join(), '4,5,6');
});

test('timestamps never go backwards along the chain', async () => {
  const t = await tempStore('airlock-audit-');
  open.push(t);
  t.clock.set('2026-01-01T00:00:10.000Z');
  t.store.audit.append({ actor: 'a', action: 'x', subject: '1' });
  t.clock.set('2026-01-01T00:00:05.000Z'); // clock stepped back
  const e = t.store.audit.append({ actor: 'a', action: 'x', subject: '2' });
  assert.equal(e.at, '2026-01-01T00:00:10.000Z');
  t.clock.set('2026-01-01T00:00:11.000Z');
  assert.equal(t.store.audit.append({ actor: 'a', action: 'x', subject: '3' }).at, '2026-01-01T00:00:11.000Z');
  assert.equal(t.store.audit.verify().ok, true);
});

test('an empty log verifies', async () => {
  const t = await tempStore('airlock-audit-');
  open.push(t);
  assert.equal(t.store.audit.head(), null);
  assert.deepEqual(t.store.audit.verify(), { ok: true, events: 0, head: null, brokenAt: null, message: 'ok 0 events, head none' });
});

test('the triggers refuse UPDATE and DELETE through SQL', async () => {
  const { file } = await withEvents(3);
  const db = new Database(file);
  try {
    assert.throws(() => db.prepare("UPDATE audit_events SET actor = 'x' WHERE seq = 2").run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_events WHERE seq = 2').run(), /append-only/);
  } finally {
    db.close();
  }
});

test('tampering: an edited row is caught at its seq', async () => {
  const { store, file } = await withEvents(10);
  tamper(file, `UPDATE audit_events SET details = '{"a":{"list":[],"text":"nothing to see"},"z":5}' WHERE seq = 5`);
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, 5);
  assert.match(v.message, /^broken at seq 5: hash does not match/);
});

test('tampering: an edited row with a recomputed hash breaks the next link', async () => {
  const { store, file } = await withEvents(10);
  const e5 = store.audit.list().find((e) => e.seq === 5)!;
  const forged = { ...e5, actor: 'someone-else' };
  tamper(file, `UPDATE audit_events SET actor = 'someone-else', hash = '${hashEvent(forged)}' WHERE seq = 5`);
  const v = store.audit.verify();
  assert.equal(v.brokenAt, 6);
  assert.match(v.message, /^broken at seq 6: prevHash does not match the hash of seq 5/);
});

test('tampering: a deleted middle row is caught', async () => {
  const { store, file } = await withEvents(10);
  tamper(file, 'DELETE FROM audit_events WHERE seq = 4');
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, 4);
  assert.match(v.message, /^broken at seq 4: expected seq 4 after 3 but found 5/);
});

test('tampering: deleting the first rows is caught (the database is never a partial log)', async () => {
  const { store, file } = await withEvents(5);
  tamper(file, 'DELETE FROM audit_events WHERE seq <= 2');
  const v = store.audit.verify();
  assert.equal(v.brokenAt, 1);
  assert.match(v.message, /starts at seq 3/);
});

test('tampering: every audit row deleted is caught when the record holds agents, sessions or exchanges; a new empty store verifies', async () => {
  const t = await tempStore('airlock-audit-empty-');
  open.push(t);
  assert.equal(t.store.audit.verify().ok, true, 'a store nothing was written to');
  t.store.agents.add('bot', ['ai-coding']);
  t.store.audit.append({ actor: 'local:me', action: 'agent.added', subject: 'bot' }); // as `airlock agent add` does
  assert.equal(t.store.audit.verify().ok, true);
  tamper(t.file, 'DELETE FROM audit_events');
  const v = t.store.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, 1);
  assert.match(v.message, /the audit log is empty, but the record holds agents, sessions or exchanges/);
});

test('export files: no events, a key written twice, a number JSON cannot hold: none of them verifies', async () => {
  const { store } = await withEvents(3);
  assert.deepEqual(verifyEvents([]).ok, false);
  assert.match(verifyEvents([]).message, /^broken at seq 1: no events/);
  // A key twice: JSON.parse keeps the last (the hashed value), a reader sees the first.
  const lines = exportAudit(store, { format: 'jsonl' }).split('\n').filter(Boolean);
  const twice = lines[1]!.replace('"actor":"human:ana"', '"actor":"mallory","actor":"human:ana"');
  assert.notEqual(twice, lines[1]);
  assert.throws(() => parseAuditExport([lines[0], twice, lines[2]].join('\n'), 'jsonl'),
    (e: unknown) => e instanceof AirlockError && /line 2: the key "actor" is written twice/.test((e as Error).message));
  // CSV: a details value that was null, replaced by 1e999 (parses to Infinity, which JSON writes as null).
  const csv = exportAudit(store, { format: 'csv' });
  const inf = csv.replace('[1,null,true]', '[1,1e999,true]');
  assert.notEqual(inf, csv);
  const r = verifyEvents(parseAuditExport(inf, 'csv'));
  assert.equal(r.ok, false);
  assert.equal(r.brokenAt, 1);
  assert.match(r.message, /content cannot be hashed \(canonicalJson: Infinity is not a JSON number\)/);
  assert.equal(verifyEvents(parseAuditExport(csv, 'csv')).ok, true);
});

test('the database: details that parse to the hashed value but are written differently (a key twice, spaces) do not verify', async () => {
  const t = await withEvents(3);
  assert.equal(t.store.audit.verify().ok, true);
  // seq 2's details are {"a":{...},"z":2}: a key twice, so that SQL's json_extract reads another value.
  tamper(t.file, `UPDATE audit_events SET details = '{"z":999,' || substr(details, 2) WHERE seq = 2`);
  const db = new Database(t.file, { readonly: true });
  const seen = db.prepare("SELECT json_extract(details, '$.z') AS z FROM audit_events WHERE seq = 2").get() as { z: number };
  db.close();
  assert.equal(seen.z, 999, 'a SQL reader sees the first z');
  const v = t.store.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, 2);
  assert.match(v.message, /hash does not match the event content \(event was modified\)/);
  const u = await withEvents(3);
  tamper(u.file, `UPDATE audit_events SET details = replace(details, ':', ' : ') WHERE seq = 3`);
  assert.equal(u.store.audit.verify().brokenAt, 3);
});

test('export files: a field the hash does not cover does not verify', async () => {
  const { store } = await withEvents(3);
  const lines = exportAudit(store, { format: 'jsonl' }).split('\n').filter(Boolean);
  const added = lines[1]!.replace(/\}$/, ',"approvedBy":"alice (added after export)"}');
  assert.throws(() => parseAuditExport([lines[0], added, lines[2]].join('\n'), 'jsonl'),
    (e: unknown) => e instanceof AirlockError && /line 2: the field "approvedBy" is not part of an audit event/.test((e as Error).message));
  assert.equal(verifyEvents(parseAuditExport(lines.join('\n'), 'jsonl')).ok, true);
});

test('duplicateKey: a key twice in one object, at any depth, after unescaping; equal keys in different objects are fine', () => {
  assert.equal(duplicateKey('{"a":1,"a":2}'), 'a');
  assert.equal(duplicateKey('{"x":{"k":1,"\\u006b":2}}'), 'k');
  assert.equal(duplicateKey('{"a":{"b":1},"b":2}'), null);
  assert.equal(duplicateKey('{"a":"\\"a\\":1,","b":[{"c":1},{"c":2}],"s":"{\\"b\\":1}"}'), null);
  assert.equal(duplicateKey('[{"a":1},{"a":1,"b":[1,{"a":2,"a":3}]}]'), 'a');
  assert.equal(duplicateKey('{}'), null);
});

test('tampering: two rows swapped (reordered) is caught at the first of them', async () => {
  const { store, file } = await withEvents(10);
  tamper(file, 'UPDATE audit_events SET seq = -1 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 7; UPDATE audit_events SET seq = 7 WHERE seq = -1;');
  const v = store.audit.verify();
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, 3);
});

test('a head kept elsewhere shows what the chain alone cannot: its end cut off, or the chain rewritten from an event on', async () => {
  const { store, file } = await withEvents(10);
  const events = store.audit.list();
  const h = (seq: number) => events[seq - 1]!.hash;

  // Kept heads that are still there: ok, with the seq and how much followed.
  let v = store.audit.verify({ head: h(10) });
  assert.equal(v.ok, true);
  assert.equal(v.headSeq, 10);
  assert.equal(v.message, `ok 10 events, head ${h(10)}; the head given is seq 10, 0 events since`);
  v = store.audit.verify({ head: h(7).toUpperCase() });
  assert.equal(v.ok, true, 'hex digits in either case');
  assert.match(v.message, /; the head given is seq 7, 3 events since$/);
  store.audit.append({ actor: 'system', action: 'later', subject: 'x' });
  assert.match(store.audit.verify({ head: h(10) }).message, /^ok 11 events, .*; the head given is seq 10, 1 event since$/);

  // The end cut off (seq 9 on): the chain alone still verifies; the head kept at seq 10 is gone.
  tamper(file, 'DELETE FROM audit_events WHERE seq >= 9');
  assert.equal(store.audit.verify().ok, true, 'no check inside the log shows a cut-off end');
  v = store.audit.verify({ head: h(10) });
  assert.equal(v.ok, false);
  assert.equal(v.brokenAt, null);
  assert.equal(v.head, h(8));
  assert.equal(v.message, `not the log the head ${h(10)} was taken from: no event has that hash (its events were removed from the end, or rewritten). ` +
    `The chain itself holds: ok 8 events, head ${h(8)}.`);
  assert.equal(store.audit.verify({ head: h(7) }).ok, true, 'an older head is still in it');

  // Rewritten from seq 5 on, every hash recomputed so that each link holds: caught by any head from seq 5 on.
  let prev = h(4);
  for (const e of events.slice(4, 8)) {
    const forged = { ...e, actor: e.seq === 5 ? 'someone-else' : e.actor, prevHash: prev };
    const hash = hashEvent(forged);
    tamper(file, `UPDATE audit_events SET actor = '${forged.actor}', prev_hash = '${prev}', hash = '${hash}' WHERE seq = ${e.seq}`);
    prev = hash;
  }
  assert.equal(store.audit.verify().ok, true, 'a chain rewritten forward verifies on its own');
  assert.equal(store.audit.verify({ head: h(7) }).ok, false);
  assert.equal(store.audit.verify({ head: h(4) }).ok, true, 'events before the rewrite are as they were');
});

test('a kept head and exports: found inside a partial export, or a hint when the export starts after it', async () => {
  const { store } = await withEvents(10);
  const events = store.audit.list();
  const partial = parseAuditExport(exportAudit(store, { format: 'jsonl', since: '2026-01-01T00:00:04.000Z' }), 'jsonl');
  assert.equal(partial[0]!.seq, 5);
  let v = verifyEvents(partial, { head: events[6]!.hash, allowPartial: true });
  assert.equal(v.ok, true);
  assert.match(v.message, /\(partial export starting at seq 5\); the head given is seq 7, 3 events since$/);
  v = verifyEvents(partial, { head: events[2]!.hash, allowPartial: true });
  assert.equal(v.ok, false);
  assert.match(v.message, /This export starts at seq 5: if that head is older, verify an export without --since, or the database\.$/);
  // A file cut short loses the head it ended with.
  assert.equal(verifyEvents(partial.slice(0, -1), { head: events[9]!.hash, allowPartial: true }).ok, false);
  // A broken chain is reported as broken, whatever head is given.
  const edited = partial.map((e) => (e.seq === 6 ? { ...e, subject: 'changed' } : e));
  assert.equal(verifyEvents(edited, { head: events[9]!.hash, allowPartial: true }).brokenAt, 6);
});

test('parseHeadOption: 64 hex digits, any case, nothing else', () => {
  assert.equal(parseHeadOption(` ${'AB'.repeat(32)} `), 'ab'.repeat(32));
  for (const bad of ['', 'abc', 'g'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), `seq 3, ${'a'.repeat(64)}`]) {
    assert.throws(() => parseHeadOption(bad), (e: unknown) => e instanceof AirlockError && /A kept head must be the 64 hex digits/.test((e as Error).message), bad);
  }
});

for (const format of ['jsonl', 'csv'] as const) {
  test(`export ${format}: round trip verifies; edits, deletions and swaps are caught`, async () => {
    const { store } = await withEvents(10);
    const text = exportAudit(store, { format });
    const parsed = parseAuditExport(text, format);
    assert.deepEqual(parsed, store.audit.list());
    const v = verifyEvents(parsed);
    assert.equal(v.ok, true, v.message);
    assert.equal(v.head, store.audit.head()!.hash);

    const lines = text.split(format === 'csv' ? '\r\n' : '\n');
    // CSV: line 0 is the header; a row's details contain a quoted CRLF, so find rows by their seq prefix instead
    const rows = format === 'csv' ? splitCsvRows(text) : lines.filter((l) => l !== '');
    const header = format === 'csv' ? 'seq,at,actor,action,subject,details,prev_hash,hash\r\n' : '';
    const join = (rs: string[]) => header + rs.map((r) => r + (format === 'csv' ? '\r\n' : '\n')).join('');
    assert.equal(join(rows), text, 'row splitting reproduces the export');

    // edit: change the actor of seq 6
    const edited = [...rows];
    edited[5] = edited[5]!.replace(format === 'csv' ? ',human:ana,' : '"actor":"human:ana"', format === 'csv' ? ',human:bob,' : '"actor":"human:bob"');
    assert.notEqual(edited[5], rows[5]);
    let r = verifyEvents(parseAuditExport(join(edited), format));
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, 6);

    // delete seq 4
    r = verifyEvents(parseAuditExport(join(rows.filter((_, i) => i !== 3)), format));
    assert.equal(r.brokenAt, 4);
    assert.match(r.message, /events missing or out of order/);

    // delete the last line: undetectable without an anchor, but the head changes
    r = verifyEvents(parseAuditExport(join(rows.slice(0, -1)), format));
    assert.equal(r.ok, true);
    assert.notEqual(r.head, v.head);

    // swap seq 3 and 4
    const swapped = [...rows];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    r = verifyEvents(parseAuditExport(join(swapped), format));
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, 3);

    // partial export (since): ok, and says so; a first event with seq 1 still needs the zero prevHash
    const since = '2026-01-01T00:00:04.000Z';
    const partialText = exportAudit(store, { format, since });
    const partial = parseAuditExport(partialText, format);
    assert.deepEqual(partial.map((e) => e.seq), [5, 6, 7, 8, 9, 10]);
    // Without --partial, a file that starts later is a log with its first events cut off.
    r = verifyEvents(partial);
    assert.equal(r.brokenAt, 1);
    assert.match(r.message, /^broken at seq 1: the log starts at seq 5; events 1 to 4 are missing \(an export made with --since starts later: verify it with --partial/);
    r = verifyEvents(partial, { allowPartial: true });
    assert.equal(r.ok, true);
    assert.equal(r.head, v.head);
    assert.match(r.message, /^ok 6 events, head [0-9a-f]{64} \(partial export starting at seq 5\)$/);
    const partialRows = format === 'csv' ? splitCsvRows(partialText) : partialText.split('\n').filter((l) => l !== '');
    r = verifyEvents(parseAuditExport(join(partialRows.filter((_, i) => i !== 2)), format), { allowPartial: true });
    assert.equal(r.brokenAt, 7, 'links inside a partial export are still checked');
    const fakeFirst: AuditEvent = { ...parsed[0]!, prevHash: 'f'.repeat(64) };
    assert.equal(verifyEvents([fakeFirst, ...parsed.slice(1)]).brokenAt, 1);
  });
}

/** Splits CSV text (after the header) into records, honouring quoted CRLFs. */
function splitCsvRows(text: string): string[] {
  const body = text.slice(text.indexOf('\r\n') + 2);
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') quoted = !quoted;
    if (!quoted && c === '\r' && body[i + 1] === '\n') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

test('parseAuditExport rejects malformed input with a line number', () => {
  assert.throws(() => parseAuditExport('{"seq":1}\nnot json\n', 'jsonl'), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request' && /line 1/.test(e.message));
  assert.throws(() => parseAuditExport('x\nnot json\n', 'jsonl'), /line 1: not valid JSON/);
  assert.throws(() => parseAuditExport('a,b\r\n', 'csv'), /expected header/);
  assert.throws(() => parseAuditExport('seq,at,actor,action,subject,details,prev_hash,hash\r\n1,"x\r\n', 'csv'), /unterminated/);
  assert.deepEqual(parseAuditExport('', 'jsonl'), []);
  assert.deepEqual(parseAuditExport('seq,at,actor,action,subject,details,prev_hash,hash\n', 'csv'), []);
});
