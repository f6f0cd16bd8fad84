import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { runCommand } from '../helpers/run';
import { makeTempDir, removeDir, freePort } from '../helpers/tmp';
import { startUpstream } from '../helpers/https-upstream';
import { createTestPki } from '../helpers/test-ca';

test('runCommand captures output, exit code and stdin; never throws', async () => {
  const r = await runCommand('python3', ['-c', 'import sys; d=sys.stdin.read(); print(d.upper()); sys.stderr.write("e"); sys.exit(3)'],
    { input: 'abc' });
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'ABC\n');
  assert.equal(r.stderr, 'e');
  assert.equal(r.timedOut, false);
  const missing = await runCommand('definitely-not-a-command-xyz', []);
  assert.equal(missing.code, -1);
  assert.match(missing.stderr, /ENOENT/);
});

test('runCommand kills the whole process group on timeout', async () => {
  const t = Date.now();
  // The grandchild (sleep) keeps stdout open; only a group kill ends it promptly.
  const r = await runCommand('sh', ['-c', 'sleep 30 & sleep 30'], { timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.notEqual(r.code, 0);
  assert.ok(Date.now() - t < 2_500, `took ${Date.now() - t} ms`);
});

test('makeTempDir / removeDir / freePort', async () => {
  const d = await makeTempDir('airlock-selftest-tmp');
  assert.ok(d.startsWith(tmpdir()));
  assert.ok(existsSync(d));
  await removeDir(d);
  assert.ok(!existsSync(d));
  await removeDir(d); // idempotent
  const port = await freePort();
  assert.ok(port > 0);
  const s = createServer();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  await new Promise<void>((r) => s.close(() => r()));
});

test('built-in RFC 6455 echo works with the ws client (text, binary, close)', async () => {
  const pki = await createTestPki();
  const up = await startUpstream({ websocket: 'builtin', pki });
  try {
    const WebSocket = createRequire(import.meta.url)('ws') as new (u: string, o: object) => {
      on(ev: string, fn: (...a: any[]) => void): void; send(d: string | Buffer): void; close(code?: number): void;
    };
    const ws = new WebSocket(up.wsUrl, { ca: pki.caPem });
    const big = 'x'.repeat(40_000);
    const got: string[] = [];
    const closed = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('ws timeout')), 10_000);
      ws.on('open', () => { ws.send('hi'); ws.send(big); ws.send(Buffer.from([1, 2, 3])); });
      ws.on('message', (d: Buffer) => { got.push(d.toString('latin1')); if (got.length === 3) ws.close(1000); });
      ws.on('close', (code: number) => { clearTimeout(t); resolve(code); });
      ws.on('error', (e: Error) => { clearTimeout(t); reject(e); });
    });
    assert.deepEqual(got, ['hi', big, '\x01\x02\x03']);
    assert.equal(closed, 1000);
    assert.ok(up.requests.some((q) => q.url === '/ws'));
  } finally {
    await up.close();
  }
});
