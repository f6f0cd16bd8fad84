// A gateway started on a data dir whose CA key other users could read: the key is made 0600, the log
// warns, and the audit log keeps it (`ca.warning`), so an auditor sees the CA may be known elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { loadOrCreateCa } from '../../certs';
import { startAirlock } from '../../main/service';
import { createLogger } from '../../main/log';
import { makeTempDir, removeDir } from '../helpers/tmp';

test('a CA key left readable by others: made 0600, warned in the log and in the audit log', async (t) => {
  const dir = await makeTempDir('airlock-ca-start-');
  t.after(() => removeDir(dir));
  const first = await loadOrCreateCa(dir, { onWarning: () => undefined });
  chmodSync(first.paths.key, 0o644);
  const lines: string[] = [];
  const log = createLogger('warn', (line) => lines.push(line));
  const running = await startAirlock({ dataDir: dir, log, proxyPort: 0, consolePort: null });
  try {
    assert.equal(statSync(first.paths.key).mode & 0o777, 0o600);
    assert.ok(lines.some((l) => /may have been copied/.test(l)), lines.join('\n'));
    const events = running.service.store.audit.list().filter((e) => e.action === 'ca.warning');
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.match(JSON.stringify(events[0]!.details), /airlock ca rotate/);
  } finally {
    await running.service.close();
  }
});
