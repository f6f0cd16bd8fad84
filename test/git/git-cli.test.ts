import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { git, GitError } from '../../main/git/index';

test('collects stdout as a Buffer; input as Buffer or stream', async () => {
  const v = await git(['--version']);
  assert.equal(v.code, 0);
  assert.ok(Buffer.isBuffer(v.stdout));
  assert.match(v.stdout.toString(), /^git version /);
  const a = await git(['hash-object', '--stdin'], { input: Buffer.from('hello\n') });
  assert.equal(a.stdout.toString().trim(), 'ce013625030ba8dba906f756967f9e9ca394464a');
  const b = await git(['hash-object', '--stdin'], { input: Readable.from([Buffer.from('hel'), Buffer.from('lo\n')]) });
  assert.equal(b.stdout.toString().trim(), 'ce013625030ba8dba906f756967f9e9ca394464a');
});

test('never prompts, no system config, no credential helper', async () => {
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '1', GIT_ASKPASS: '/bin/false', GIT_CONFIG_NOSYSTEM: '0' };
  const r = await git(['-c', 'alias.showenv=!env', 'showenv'], { env });
  const out = r.stdout.toString();
  assert.match(out, /^GIT_TERMINAL_PROMPT=0$/m);
  assert.match(out, /^GIT_CONFIG_NOSYSTEM=1$/m);
  assert.doesNotMatch(out, /^GIT_ASKPASS=/m);
  const helper = await git(['config', '--get-all', 'credential.helper'], { okCodes: [0, 1] });
  assert.equal(helper.stdout.toString(), '\n'); // the one value is our empty reset
});

test('failures are GitErrors with args, code, stderr and a one-line message', async () => {
  await assert.rejects(git(['rev-parse', '--verify', 'no-such-ref'], { cwd: '/' }), (e: unknown) => {
    assert.ok(e instanceof GitError);
    assert.deepEqual(e.args, ['rev-parse', '--verify', 'no-such-ref']);
    assert.equal(e.code, 128);
    assert.match(e.stderr, /not a git repository/);
    assert.match(e.message, /^git rev-parse failed with exit code 128: fatal: not a git repository/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  const ok = await git(['rev-parse', '--verify', 'no-such-ref'], { cwd: '/', okCodes: [0, 128] });
  assert.equal(ok.code, 128);
  await assert.rejects(git(['frobnicate'], { name: 'frob step' }), /^GitError: frob step failed with exit code 1/);
  await assert.rejects(git(['--git-dir', '/nonexistent', '-c', 'a.b=c', 'log']), /^GitError: git log failed with exit code 128/);
});

test('timeout kills git and its children', async () => {
  const t0 = Date.now();
  await assert.rejects(git(['-c', 'alias.nap=!sleep 20', 'nap'], { timeoutMs: 300 }), (e: unknown) => {
    assert.ok(e instanceof GitError);
    assert.match(e.message, /timed out after 300 ms/);
    assert.equal(e.code, -1);
    return true;
  });
  assert.ok(Date.now() - t0 < 5000);
});

test('onStdout streams and can stop early', async () => {
  let seen = 0;
  const r = await git(['-c', 'alias.spam=!yes', 'spam'], { onStdout: (c) => { seen += c.length; return seen < 100_000; } });
  assert.equal(r.stopped, true);
  assert.ok(seen >= 100_000);
  assert.equal(r.stdout.length, 0);
});
