// `airlock audit export|verify` through the real CLI: JSONL/CSV exports of the hash chain, verification of the
// database and of export files, and tampering (in an export file, and in the SQLite file with the triggers dropped)
// reported with the first broken seq.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sqlite } from '../../main/store/sqlite';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { tamperedCopy as tamperedCopyOf } from '../helpers/tamper';
import { formatAuditEvents, parseAuditExport, verifyEvents } from '../../main/store';
import { airlock, airlockOk } from '../record/cli';

const Database = sqlite();

const SECRET = 'pw-Audit-Secret-7f3k9';
const FIELDS = ['seq', 'at', 'actor', 'action', 'subject', 'details', 'prevHash', 'hash'];
let tmp: string;
let dataDir: string;

before(async () => {
  tmp = await makeTempDir('airlock-audit-cli-');
  dataDir = join(tmp, 'data');
  // Sequential: each command appends to the chain in order.
  await airlockOk(['agent', 'add', 'bot', '--json', '--data-dir', dataDir]);
  await airlockOk(['credential', 'set', '127.0.0.1:4443', '--username', 'alice', '--data-dir', dataDir], { input: SECRET + '\n' });
  await airlockOk(['agent', 'remove', 'bot', '--data-dir', dataDir]);
  await airlockOk(['ca', 'rotate', '--data-dir', dataDir]);
});

after(async () => {
  await removeDir(tmp);
});

function parseLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A copy of the record in a fresh dir, with its triggers dropped and `sql` run against it. */
function tamperedCopy(name: string, sql: string): string {
  return tamperedCopyOf(dataDir, join(tmp, name), sql);
}

/** Runs CLI commands at most `limit` at a time (2 cores: more parallel children only thrash). */
async function runLimited<T>(jobs: Array<() => Promise<T>>, limit = 3): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

test('audit export (jsonl, csv), verify of the database and of export files, tampering, --since', async (t) => {
  let exportedJsonl = '';
  let eventsBeforeExport = 0;

  await t.test('verify of the database: exit 0, ok N events, head HASH', async () => {
    const r = await airlock(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const m = /^ok (\d+) events, head ([0-9a-f]{64})\n$/.exec(r.stdout);
    assert.ok(m, `unexpected output: ${JSON.stringify(r.stdout)}`);
    eventsBeforeExport = Number(m[1]);
    assert.equal(eventsBeforeExport, 4, 'agent.added, credential.set, agent.removed, ca.rotated');
  });

  await t.test('export --format jsonl: one object per line, every field, the four actions, never the secret', async () => {
    const r = await airlock(['audit', 'export', '--format', 'jsonl', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    exportedJsonl = r.stdout;
    assert.ok(exportedJsonl.endsWith('\n'));
    const events = parseLines(exportedJsonl);
    assert.equal(events.length, eventsBeforeExport);
    for (const [i, e] of events.entries()) {
      assert.deepEqual(Object.keys(e), FIELDS);
      assert.equal(e.seq, i + 1);
      assert.match(String(e.at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(String(e.hash), /^[0-9a-f]{64}$/);
      assert.equal(e.prevHash, i === 0 ? '0'.repeat(64) : events[i - 1]!.hash);
    }
    assert.deepEqual(events.map((e) => e.action), ['agent.added', 'credential.set', 'agent.removed', 'ca.rotated']);
    assert.deepEqual(events.map((e) => e.subject).slice(0, 3), ['bot', '127.0.0.1:4443', 'bot']);
    assert.match(String(events[3]!.subject), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, 'ca.rotated names the new CA fingerprint');
    assert.deepEqual(events[1]!.details, { scheme: 'basic', username: 'alice' });
    assert.ok(!exportedJsonl.includes(SECRET), 'the credential secret is in the export');
    assert.ok(!exportedJsonl.includes(Buffer.from(`alice:${SECRET}`).toString('base64')), 'the Basic credential is in the export');
  });

  const csvFile = join(tmp, 'export.csv');
  await t.test('export --format csv --out FILE: header, quoted JSON details, and the earlier export appended audit.exported', async () => {
    const r = await airlock(['audit', 'export', '--format', 'csv', '--out', csvFile, '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'with --out nothing goes to stdout');
    assert.equal(statSync(csvFile).mode & 0o777, 0o600, 'the export is readable by its owner only, like the exchanges export');
    const text = readFileSync(csvFile, 'utf8');
    const lines = text.split('\r\n');
    assert.equal(lines[0], 'seq,at,actor,action,subject,details,prev_hash,hash');
    assert.equal(lines.at(-1), '', 'every record ends with CRLF');
    const rows = lines.slice(1, -1);
    assert.equal(rows.length, eventsBeforeExport + 1);
    assert.match(rows[1]!, /^2,[^,]+,[^,]+,credential\.set,127\.0\.0\.1:4443,"\{""scheme"":""basic"",""username"":""alice""\}",[0-9a-f]{64},[0-9a-f]{64}$/);
    assert.ok(!text.includes(SECRET));
    const events = parseAuditExport(text, 'csv');
    const last = events.at(-1)!;
    assert.equal(last.action, 'audit.exported', 'the jsonl export appended an audit event');
    assert.equal(last.subject, 'jsonl');
    // With the digest of what it wrote: `audit verify --export FILE` checks a file against it.
    assert.deepEqual(last.details, { out: 'stdout', since: null, sha256: createHash('sha256').update(exportedJsonl).digest('hex'), bytes: Buffer.byteLength(exportedJsonl) });
    assert.equal(last.prevHash, String(parseLines(exportedJsonl).at(-1)!.hash));
  });

  await t.test('an export that cannot be written, or a file that cannot be read: one line, exit 1, and no audit.exported', async () => {
    const before = await airlock(['audit', 'verify', '--data-dir', dataDir]);
    const [failedOut, missing] = await Promise.all([
      airlock(['audit', 'export', '--out', join(tmp, 'no-such-dir', 'x.jsonl'), '--data-dir', dataDir]),
      airlock(['audit', 'verify', '--file', join(tmp, 'no-such-export.jsonl'), '--data-dir', dataDir]),
    ]);
    assert.equal(failedOut.code, 1);
    assert.equal(failedOut.stderr, `airlock audit: cannot write ${join(tmp, 'no-such-dir', 'x.jsonl')} (ENOENT)\n`);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `airlock audit: cannot read the export ${join(tmp, 'no-such-export.jsonl')} (ENOENT)\n`);
    const after = await airlock(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(after.stdout.split(',')[0], before.stdout.split(',')[0], 'no event for an export that was not written');
    assert.match(after.stdout, new RegExp(`^ok ${eventsBeforeExport + 2} events`));
  });

  await t.test('verify: file exports, tampered files, tampered databases, --since (one batch of CLI runs)', async () => {
    const good = join(tmp, 'export.jsonl');
    writeFileSync(good, exportedJsonl);
    const lines = exportedJsonl.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 4);
    const edited = [...lines];
    edited[1] = edited[1]!.replace('"username":"alice"', '"username":"mallory"');
    assert.notEqual(edited[1], lines[1]);
    const deleted = lines.filter((_, i) => i !== 2);
    const swapped = [...lines];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    const fileCases: Array<[string, string[], RegExp]> = [
      ['edited line', edited, /^broken at seq 2: hash does not match/],
      ['deleted line', deleted, /^broken at seq 3: expected seq 3 after 2 but found 4/],
      ['swapped lines', swapped, /^broken at seq 2: expected seq 2 after 1 but found 3/],
    ];
    const files = fileCases.map(([name, ls]) => {
      const f = join(tmp, `export-${name.replace(' ', '-')}.jsonl`);
      writeFileSync(f, ls.join('\n') + '\n');
      return f;
    });
    const dbCases: Array<[string, string, RegExp]> = [
      ['db update', `UPDATE audit_events SET details = '{"groups":["admin"]}' WHERE seq = 1`, /^broken at seq 1: hash does not match/],
      ['db delete', 'DELETE FROM audit_events WHERE seq = 3', /^broken at seq 3: expected seq 3 after 2 but found 4/],
      ['db swap', 'UPDATE audit_events SET seq = -2 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = -2;',
        /^broken at seq 2: prevHash does not match the hash of seq 1/],
    ];
    const dirs = dbCases.map(([name, sql]) => tamperedCopy(name.replace(' ', '-'), sql));
    const future = join(tmp, 'future.jsonl');

    const [okDb, okJsonl, sinceFuture, sinceBad, ...bad] = await runLimited([
      () => airlock(['audit', 'verify', '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--file', good, '--data-dir', dataDir]),
      () => airlock(['audit', 'export', '--since', '2999-01-01', '--out', future, '--data-dir', dataDir]),
      () => airlock(['audit', 'export', '--since', 'notadate', '--data-dir', dataDir]),
      ...files.map((f) => () => airlock(['audit', 'verify', '--file', f, '--data-dir', dataDir])),
      ...dirs.map((d) => () => airlock(['audit', 'verify', '--data-dir', d])),
    ]);

    // The database (with the two audit.exported events) still verifies.
    assert.equal(okDb!.code, 0, okDb!.stdout + okDb!.stderr);
    assert.match(okDb!.stdout, /^ok (6|7) events, head [0-9a-f]{64}\n$/);
    assert.equal(okJsonl!.code, 0, okJsonl!.stdout + okJsonl!.stderr);
    assert.equal(okJsonl!.stdout, `ok ${lines.length} events, head ${String(JSON.parse(lines.at(-1)!).hash)}\n`);
    // The CSV export reads back and verifies too (same checker as `audit verify --file X.csv`).
    const csvCheck = verifyEvents(parseAuditExport(readFileSync(csvFile, 'utf8'), 'csv'));
    assert.equal(csvCheck.ok, true, csvCheck.message);
    assert.equal(csvCheck.events, lines.length + 1);

    const cases = [...fileCases.map(([n, , re]) => [n, re] as const), ...dbCases.map(([n, , re]) => [n, re] as const)];
    for (const [i, r] of bad.entries()) {
      const [name, re] = cases[i]!;
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, re, name);
    }

    // --since in the future: nothing, but a valid (empty) export.
    assert.equal(sinceFuture!.code, 0, sinceFuture!.stderr);
    const empty = readFileSync(future, 'utf8');
    assert.equal(empty, '');
    // ... which, holding nothing, does not verify (an emptied file would look the same).
    assert.equal(verifyEvents(parseAuditExport(empty, 'jsonl')).ok, false);
    assert.equal(formatAuditEvents([], 'csv'), 'seq,at,actor,action,subject,details,prev_hash,hash\r\n');

    // --since notadate: usage error, one line.
    assert.equal(sinceBad!.code, 2);
    assert.equal(sinceBad!.stdout, '');
    assert.equal(sinceBad!.stderr.split('\n').filter((l) => l !== '').length, 1, sinceBad!.stderr);
    assert.match(sinceBad!.stderr, /notadate/);
  });
  await t.test('a head kept from an export: verify --head finds it; a database with its end cut off, or an export cut short, is not that log', async () => {
    const out = join(tmp, 'kept.jsonl');
    const exp = await airlock(['audit', 'export', '--out', out, '--data-dir', dataDir]);
    assert.equal(exp.code, 0, exp.stderr);
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    const last = JSON.parse(lines.at(-1)!) as { seq: number; hash: string };
    assert.equal(exp.stderr, `audit log written to ${out}\nhead: seq ${last.seq}, ${last.hash} (keep it outside this machine; \`airlock audit verify --head HASH\` checks the log still holds it)\n`);
    const prior = JSON.parse(lines.at(-2)!) as { seq: number; hash: string };
    const short = join(tmp, 'kept-short.jsonl');
    writeFileSync(short, lines.slice(0, -1).join('\n') + '\n');
    // The database after the export holds one more event (audit.exported); cut off from the kept head on.
    const cut = tamperedCopy('cut-end', `DELETE FROM audit_events WHERE seq >= ${last.seq}`);

    const [db, dbOld, file, cutPlain, cutKept, shortKept, badHead, exportHead] = await runLimited([
      () => airlock(['audit', 'verify', '--head', last.hash, '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--head', prior.hash.toUpperCase(), '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--file', out, '--head', last.hash, '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--data-dir', cut]),
      () => airlock(['audit', 'verify', '--head', last.hash, '--data-dir', cut]),
      () => airlock(['audit', 'verify', '--file', short, '--head', last.hash, '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--head', 'seq-7', '--data-dir', dataDir]),
      () => airlock(['audit', 'export', '--head', last.hash, '--data-dir', dataDir]),
    ]);
    assert.equal(db!.code, 0, db!.stdout + db!.stderr);
    assert.match(db!.stdout, new RegExp(`^ok ${last.seq + 1} events, head [0-9a-f]{64}; the head given is seq ${last.seq}, 1 event since\n$`));
    assert.equal(dbOld!.code, 0, dbOld!.stdout + dbOld!.stderr);
    assert.match(dbOld!.stdout, new RegExp(`; the head given is seq ${prior.seq}, 2 events since\n$`));
    assert.equal(file!.code, 0, file!.stdout + file!.stderr);
    assert.equal(file!.stdout, `ok ${lines.length} events, head ${last.hash}; the head given is seq ${last.seq}, 0 events since\n`);

    // Without the kept head, the cut-off database verifies: that is the gap --head closes.
    assert.equal(cutPlain!.code, 0, cutPlain!.stdout);
    assert.equal(cutPlain!.stdout, `ok ${prior.seq} events, head ${prior.hash}\n`);
    for (const [name, r] of [['cut-off database', cutKept], ['export cut short', shortKept]] as const) {
      assert.equal(r!.code, 1, `${name}: ${r!.stdout}${r!.stderr}`);
      assert.equal(r!.stdout, `not the log the head ${last.hash} was taken from: no event has that hash (its events were removed from the end, or rewritten). ` +
        `The chain itself holds: ok ${prior.seq} events, head ${prior.hash}.\n`, name);
    }
    for (const [name, r, re] of [['bad --head', badHead, /A kept head must be the 64 hex digits/], ['--head on export', exportHead, /--head is an option of `airlock audit verify`/]] as const) {
      assert.equal(r!.code, 2, `${name}: ${r!.stdout}${r!.stderr}`);
      assert.equal(r!.stdout, '', name);
      assert.equal(r!.stderr.split('\n').filter((l) => l !== '').length, 1, `${name}: ${r!.stderr}`);
      assert.match(r!.stderr, re, name);
    }
  });
  await t.test('--since exports verify with --partial only; a mistyped --data-dir, impossible dates and a loose --out file are refused or fixed', async () => {
    const full = join(tmp, 'full.jsonl');
    const partial = join(tmp, 'partial.jsonl');
    const loose = join(tmp, 'loose.jsonl');
    writeFileSync(loose, 'old contents\n', { mode: 0o644 });
    chmodSync(loose, 0o644);
    const ex = await airlock(['audit', 'export', '--out', full, '--data-dir', dataDir]);
    assert.equal(ex.code, 0, ex.stderr);
    const lines = readFileSync(full, 'utf8').split('\n').filter((l) => l !== '');
    writeFileSync(partial, lines.slice(2).join('\n') + '\n'); // as a --since export would start, or a full one with its head cut off
    const typo = join(tmp, 'no-such-data-dir');
    const [plainVerify, withPartial, typoVerify, typoExport, feb30, y5, looseOut, partialOnDb] = await runLimited([
      () => airlock(['audit', 'verify', '--file', partial, '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--file', partial, '--partial', '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--data-dir', typo]),
      () => airlock(['audit', 'export', '--data-dir', typo]),
      () => airlock(['audit', 'export', '--since', '2026-02-30', '--data-dir', dataDir]),
      () => airlock(['audit', 'export', '--since', '99999-01-01', '--data-dir', dataDir]),
      () => airlock(['audit', 'export', '--out', loose, '--data-dir', dataDir]),
      () => airlock(['audit', 'verify', '--partial', '--data-dir', dataDir]),
    ]);
    assert.equal(plainVerify!.code, 1, plainVerify!.stdout);
    assert.match(plainVerify!.stdout, /^broken at seq 1: the log starts at seq 3; events 1 to 2 are missing \(an export made with --since starts later: verify it with --partial/);
    assert.equal(withPartial!.code, 0, withPartial!.stdout + withPartial!.stderr);
    assert.match(withPartial!.stdout, /^ok \d+ events, head [0-9a-f]{64} \(partial export starting at seq 3\)\n$/);
    for (const r of [typoVerify, typoExport]) {
      assert.equal(r!.code, 1, r!.stdout + r!.stderr);
      assert.match(r!.stderr, /no Airlock record in .*no-such-data-dir/);
    }
    assert.ok(!existsSync(typo), 'nothing was created in the mistyped directory');
    for (const r of [feb30, y5]) {
      assert.equal(r!.code, 2, r!.stdout + r!.stderr);
      assert.match(r!.stderr, /is not a date/);
    }
    assert.equal(looseOut!.code, 0, looseOut!.stderr);
    assert.equal(statSync(loose).mode & 0o777, 0o600, 'an existing file written with --out is made owner-only');
    assert.equal(partialOnDb!.code, 2);
    assert.match(partialOnDb!.stderr, /--partial is an option of `airlock audit verify --file EXPORT`/);
  });
});
