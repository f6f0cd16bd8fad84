// `airlock run`'s child process rules: which signals are passed on, the exit status of a command
// killed by a signal, and the environment merge that leaves nothing to route around Airlock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitStatus, mergeAgentEnv, runAgentCommand, signalPlan } from '../../main/env/run-agent';

test('signals: with a terminal, Ctrl-C and Ctrl-\\ are not passed on (the terminal signals the whole group); without one they are', () => {
  assert.deepEqual(signalPlan('linux', true), { outlive: ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'], forward: ['SIGTERM', 'SIGHUP'] });
  assert.deepEqual(signalPlan('darwin', false), { outlive: ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'], forward: ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'] });
  // Windows: the console signals every attached process, and kill() is TerminateProcess: nothing passed on.
  assert.deepEqual(signalPlan('win32', true).forward, []);
  assert.deepEqual(signalPlan('win32', false).outlive, ['SIGINT', 'SIGBREAK', 'SIGHUP', 'SIGTERM']);
});

test('exit status: the code, or 128 + the number of the signal that killed the command', () => {
  assert.equal(exitStatus(0, null), 0);
  assert.equal(exitStatus(7, null), 7);
  assert.equal(exitStatus(null, 'SIGINT'), 130);
  assert.equal(exitStatus(null, 'SIGSEGV'), 139);
  assert.equal(exitStatus(null, 'SIGPIPE'), 141);
  assert.equal(exitStatus(null, 'SIGQUIT'), 131);
  assert.equal(exitStatus(null, null), 1);
});

test("environment: an inherited variable that differs from one of Airlock's only in case is dropped (npm reads npm_config_* in any case; Windows keeps one per name)", () => {
  const env = mergeAgentEnv(
    { PATH: '/bin', NPM_CONFIG_PROXY: 'http://around-airlock:3128', Https_Proxy: 'http://other', NO_PROXY: '*', Keep: 'x' },
    { npm_config_proxy: 'http://a:t@127.0.0.1:8899', HTTPS_PROXY: 'http://a:t@127.0.0.1:8899', https_proxy: 'http://a:t@127.0.0.1:8899', NO_PROXY: '' },
  );
  assert.deepEqual(env, {
    PATH: '/bin', Keep: 'x',
    npm_config_proxy: 'http://a:t@127.0.0.1:8899', HTTPS_PROXY: 'http://a:t@127.0.0.1:8899', https_proxy: 'http://a:t@127.0.0.1:8899', NO_PROXY: '',
  });
});

test('runAgentCommand: a command that cannot start is 127 with its error; one that runs gives its status', async () => {
  const missing = await runAgentCommand('airlock-no-such-command-xyz', [], { PATH: process.env.PATH }, { stdinIsTty: false });
  assert.equal(missing.status, 127);
  assert.equal(missing.startError?.code, 'ENOENT');
  const ran = await runAgentCommand('sh', ['-c', 'exit 5'], { PATH: process.env.PATH }, { stdinIsTty: false });
  assert.deepEqual(ran, { status: 5, ended: 5 });
  // The handlers it installed for the run are gone afterwards.
  assert.equal(process.listenerCount('SIGHUP'), 0);
});
