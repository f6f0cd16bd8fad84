// A copy of a record with its append-only triggers dropped and some SQL run against it: what someone
// who can write the data dir could do, for tests that show `audit verify` notices.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sqlite } from '../../main/store/sqlite';

/**
 * Copies `<fromDir>/airlock.db` to `<intoDir>/airlock.db`, drops every trigger of the copy (the audit
 * log's refusals of UPDATE and DELETE among them), runs `sql`, puts the triggers back, and returns `intoDir`. Throws when the
 * copy had fewer than `minTriggers` triggers (a record without them would prove nothing).
 */
export function tamperedCopy(fromDir: string, intoDir: string, sql: string, minTriggers = 2): string {
  mkdirSync(intoDir, { recursive: true });
  copyFileSync(join(fromDir, 'airlock.db'), join(intoDir, 'airlock.db'));
  const Database = sqlite();
  const db = new Database(join(intoDir, 'airlock.db'));
  try {
    const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as Array<{ name: string; sql: string }>;
    if (triggers.length < minTriggers) throw new Error(`expected the append-only triggers, found ${JSON.stringify(triggers)}`);
    for (const t of triggers) db.exec(`DROP TRIGGER "${t.name}"`);
    db.exec(sql);
    // Put back as they were (verify names a missing one): what a careful attacker does.
    for (const t of triggers) db.exec(t.sql);
  } finally {
    db.close();
  }
  return intoDir;
}
