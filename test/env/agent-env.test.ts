import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentEnv, detectShell, exportLines, loadHint, shellLines, shellNamed, type AgentEnvInput } from '../../main/env/agent-env';
import { runCommand } from '../helpers/run';

const base: AgentEnvInput = {
  proxyUrl: 'http://127.0.0.1:8899',
  agent: 'claude',
  token: 'alk_abc-DEF_123',
  caPath: '/data/ca/airlock-ca.pem',
  bundlePath: '/data/ca/bundle.pem',
  nodePreloadPath: '/data/node-preload.cjs',
};

test('proxy variables carry the agent credentials, upper and lower case', () => {
  const env = agentEnv(base);
  const proxy = 'http://claude:alk_abc-DEF_123@127.0.0.1:8899';
  for (const k of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'npm_config_proxy', 'npm_config_https_proxy']) {
    assert.equal(env[k], proxy, k);
  }
  const u = new URL(env.HTTPS_PROXY!);
  assert.equal(decodeURIComponent(u.username), 'claude');
  assert.equal(decodeURIComponent(u.password), 'alk_abc-DEF_123');
});

test('NO_PROXY is emptied so nothing bypasses Airlock', () => {
  const env = agentEnv(base);
  assert.equal(env.NO_PROXY, '');
  assert.equal(env.no_proxy, '');
});

test('tools whose variable adds a CA get the Airlock CA; tools whose variable replaces the store get the bundle', () => {
  const env = agentEnv(base);
  assert.equal(env.NODE_EXTRA_CA_CERTS, base.caPath);
  assert.equal(env.DENO_CERT, base.caPath);
  for (const k of ['GIT_SSL_CAINFO', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'PIP_CERT', 'CARGO_HTTP_CAINFO', 'AWS_CA_BUNDLE', 'npm_config_cafile']) {
    assert.equal(env[k], base.bundlePath, k);
  }
});

test('Node: NODE_USE_ENV_PROXY=1 and NODE_OPTIONS requires the preload', () => {
  const env = agentEnv(base);
  assert.equal(env.NODE_USE_ENV_PROXY, '1');
  assert.equal(env.NODE_OPTIONS, '--require /data/node-preload.cjs');
  assert.equal(env.AIRLOCK_AGENT, 'claude');
  assert.equal(env.NODE_TLS_REJECT_UNAUTHORIZED, undefined);
});

test('NODE_OPTIONS keeps existing options and does not add the preload twice', () => {
  const env = agentEnv({ ...base, existingNodeOptions: '--max-old-space-size=4096' });
  assert.equal(env.NODE_OPTIONS, '--max-old-space-size=4096 --require /data/node-preload.cjs');
  const again = agentEnv({ ...base, existingNodeOptions: env.NODE_OPTIONS });
  assert.equal(again.NODE_OPTIONS, env.NODE_OPTIONS);
});

test('a preload path with spaces is quoted in NODE_OPTIONS', async () => {
  const env = agentEnv({ ...base, nodePreloadPath: '/home/me/Application Support/Airlock/node-preload.cjs' });
  assert.equal(env.NODE_OPTIONS, '--require "/home/me/Application Support/Airlock/node-preload.cjs"');
});

test('credentials with reserved characters are percent-encoded in the proxy URL', () => {
  const env = agentEnv({ ...base, agent: 'a.b_c-d', token: 'p@ss:w/rd%' });
  const u = new URL(env.HTTP_PROXY!);
  assert.equal(u.host, '127.0.0.1:8899');
  assert.equal(decodeURIComponent(u.username), 'a.b_c-d');
  assert.equal(decodeURIComponent(u.password), 'p@ss:w/rd%');
});

test('git rewrites go through GIT_CONFIG_COUNT', () => {
  const env = agentEnv({ ...base, gitRewrites: [{ base: 'https://github.com/', insteadOf: 'git@github.com:' }] });
  assert.equal(env.GIT_CONFIG_COUNT, '1');
  assert.equal(env.GIT_CONFIG_KEY_0, 'url.https://github.com/.insteadOf');
  assert.equal(env.GIT_CONFIG_VALUE_0, 'git@github.com:');
  assert.equal(agentEnv(base).GIT_CONFIG_COUNT, undefined);
});

test("exportLines survives ' and $ (eval'ed in bash)", async () => {
  const tricky = `it's $HOME and \`id\` and "$(echo no)" \\ end`;
  const text = exportLines({ ...agentEnv(base), TRICKY: tricky, EMPTY: '' });
  for (const line of text.trimEnd().split('\n')) assert.match(line, /^export [A-Za-z_][A-Za-z0-9_]*='/);
  const r = await runCommand('bash', ['-c', `eval "$1"; printf '%s\\n' "$TRICKY" "$HTTPS_PROXY" "[$EMPTY]" "$NODE_OPTIONS"`, 'bash', text],
    { env: { PATH: process.env.PATH, HOME: '/nonexistent-home' }, timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, 4), [tricky, agentEnv(base).HTTPS_PROXY, '[]', '--require /data/node-preload.cjs']);
});

test('exportLines output also works with sh (dash/POSIX)', async () => {
  const text = exportLines({ X: "a'b$c" });
  const r = await runCommand('sh', ['-c', `eval "$1"; printf '%s' "$X"`, 'sh', text], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "a'b$c");
});

test('the shell is guessed from SHELL (fish, else POSIX); Windows without SHELL gets PowerShell', () => {
  assert.equal(detectShell({ SHELL: '/usr/bin/fish' }, 'linux'), 'fish');
  assert.equal(detectShell({ SHELL: '/bin/zsh' }, 'darwin'), 'posix');
  assert.equal(detectShell({ SHELL: '/bin/bash' }, 'linux'), 'posix');
  assert.equal(detectShell({ SHELL: '/opt/homebrew/bin/fish' }, 'darwin'), 'fish');
  assert.equal(detectShell({}, 'linux'), 'posix');
  assert.equal(detectShell({}, 'win32'), 'powershell');
  // Git Bash and MSYS set SHELL on Windows: they want POSIX lines.
  assert.equal(detectShell({ SHELL: 'C:\\Program Files\\Git\\usr\\bin\\bash.exe' }, 'win32'), 'posix');
  assert.equal(shellNamed('PWSH'), 'powershell');
  assert.equal(shellNamed('zsh'), 'posix');
  assert.equal(shellNamed('tcsh'), null);
});

const tricky = `it's $HOME and \`id\` and "$(echo no)" \\ end \\' ‘curly’ ‛x‚ {a} (b) ; # c`;

test('fish lines survive quotes, backslashes and $ (sourced by a real fish)', async (t) => {
  if ((await runCommand('fish', ['--version'], { timeoutMs: 10_000 }).catch(() => ({ code: 1 }))).code !== 0) {
    return t.skip('fish is not installed (apt-get install fish)');
  }
  const text = shellLines({ ...agentEnv(base), TRICKY: tricky, EMPTY: '', NL: 'a\nb' }, 'fish');
  for (const line of text.trimEnd().split('\n').filter((l) => !l.startsWith('b'))) assert.match(line, /^set -gx [A-Za-z_][A-Za-z0-9_]* '/);
  const r = await runCommand('fish', ['--no-config', '-c', 'printf %s $argv[1] | source; printf "%s\\n" "$TRICKY" "$HTTPS_PROXY" "[$EMPTY]" "$NODE_OPTIONS" "$NL"', text],
    { env: { PATH: process.env.PATH, HOME: '/nonexistent-home' }, timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, 6), [tricky, agentEnv(base).HTTPS_PROXY, '[]', '--require /data/node-preload.cjs', 'a', 'b']);
});

test('PowerShell lines: ASCII only, single-quoted runs with \' doubled, other characters as [char] codes (PowerShell is not installed here: checked against its rules)', () => {
  const text = shellLines({ HTTPS_PROXY: 'http://a:b@127.0.0.1:1', TRICKY: tricky, EMPTY: '', HOME_DIR: 'C:\\Users\\José Müller\\AppData', EMOJI: '🔒' }, 'powershell');
  assert.deepEqual(text.split('\n'), [
    `$env:HTTPS_PROXY = 'http://a:b@127.0.0.1:1'`,
    `$env:TRICKY = 'it''s $HOME and \`id\` and "$(echo no)" \\ end \\'' ' + [char]0x2018 + 'curly' + [char]0x2019 + ' ' + [char]0x201B + 'x' + [char]0x201A + ' {a} (b) ; # c'`,
    `$env:EMPTY = ''`,
    `$env:HOME_DIR = 'C:\\Users\\Jos' + [char]0x00E9 + ' M' + [char]0x00FC + 'ller\\AppData'`,
    `$env:EMOJI = '' + [char]0xD83D + [char]0xDD12`,
    '',
  ]);
  assert.match(text, /^[\x00-\x7f]*$/, 'ASCII only: PowerShell reads a program\'s output in the console code page');
  // Evaluated the way PowerShell reads it: '…' verbatim with '' as one quote, [char]0xXXXX one UTF-16 unit, joined by +.
  const evaluate = (expr: string): string => {
    let out = '';
    const re = /\s*(?:'((?:[^']|'')*)'|\[char\]0x([0-9A-F]{4}))\s*(\+|$)/gy;
    let m: RegExpExecArray | null;
    let end = 0;
    while ((m = re.exec(expr)) !== null) {
      out += m[1] !== undefined ? m[1].replace(/''/g, "'") : String.fromCharCode(parseInt(m[2]!, 16));
      end = re.lastIndex;
      if (m[3] === '') break;
    }
    assert.equal(end, expr.length, `not all of ${expr} was read`);
    return out;
  };
  for (const [k, v] of Object.entries({ TRICKY: tricky, HOME_DIR: 'C:\\Users\\José Müller\\AppData', EMOJI: '🔒' })) {
    const expr = new RegExp(`^\\$env:${k} = (.*)$`, 'm').exec(text)![1]!;
    assert.equal(evaluate(expr), v, k);
  }
});

test('posix is exportLines; loadHint says how each shell loads the lines', () => {
  const env = agentEnv(base);
  assert.equal(shellLines(env, 'posix'), exportLines(env));
  assert.equal(loadHint('posix', 'airlock env --agent a'), 'eval "$(airlock env --agent a)"');
  assert.equal(loadHint('fish', 'airlock env --agent a'), 'airlock env --agent a | source');
  assert.equal(loadHint('powershell', 'airlock env --agent a'), 'airlock env --agent a | Out-String | Invoke-Expression');
});

test("a quoted preload path (spaces, Windows backslashes) is not added again by a nested run; npm's own no-proxy list is emptied", () => {
  for (const p of ['/home/me/Application Support/Airlock/node-preload.cjs', 'C:\\Users\\me\\AppData\\Roaming\\Airlock\\node-preload.cjs']) {
    const once = agentEnv({ ...base, nodePreloadPath: p });
    const twice = agentEnv({ ...base, nodePreloadPath: p, existingNodeOptions: once.NODE_OPTIONS });
    assert.equal(twice.NODE_OPTIONS, once.NODE_OPTIONS, p);
  }
  assert.equal(agentEnv(base).npm_config_noproxy, '');
});

test('Windows: git is told to use GIT_SSL_CAINFO with its schannel TLS backend too (after the SSH rewrites)', () => {
  const env = agentEnv({ ...base, platform: 'win32', gitRewrites: [{ base: 'https://github.com/', insteadOf: 'git@github.com:' }] });
  assert.equal(env.GIT_CONFIG_COUNT, '2');
  assert.equal(env.GIT_CONFIG_KEY_1, 'http.schannelUseSSLCAInfo');
  assert.equal(env.GIT_CONFIG_VALUE_1, 'true');
  assert.equal(agentEnv({ ...base, platform: 'linux' }).GIT_CONFIG_COUNT, undefined);
});
