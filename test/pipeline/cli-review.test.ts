// The review workflow through the real CLI: `airlock serve` as a child process, `credential set|list`,
// `run --agent A -- git push` (held), `reviews`, `show`, `deny`, a refused second decision, and `env`
// with the SSH → HTTPS insteadOf rewrites (a push to an SSH-form remote still goes through Airlock).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHttpApiClient } from '../../main/console/client';
import type { AirlockApi } from '../../main/contract/api';
import type { ReviewView } from '../../main/contract/views';
import { AIRLOCK_BIN, cleanCliEnv, REPO_ROOT, spawnServe, type ServeProcess } from '../helpers/airlock';
import { gitEnvIsolated, runGitOk } from '../helpers/git-client';
import { startGitServer, type GitRepo, type GitServer } from '../helpers/git-server';
import { runCommand, type RunResult } from '../helpers/run';
import { createTestPki } from '../helpers/test-ca';
import { makeTempDir, removeDir } from '../helpers/tmp';

const TOKEN = `cli-s3cret-${randomBytes(8).toString('hex')}`;
let gs: GitServer;
let repo: GitRepo;
let dataDir: string;
let home: string;
let work: string;
let serve: ServeProcess | undefined;
let api: AirlockApi;
let authority: string;

/** The environment of a user's shell: isolated git, no inherited proxy or test-runner variables. */
function shellEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...gitEnvIsolated(home), AIRLOCK_LOG: 'error' };
  for (const k of Object.keys(env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_EXTRA_CA_CERTS' || k === 'AIRLOCK_DATA_DIR' || k.startsWith('NODE_TEST')) delete env[k];
  }
  return env;
}

function airlock(args: string[], opts: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const dash = args.indexOf('--');
  const own = dash === -1 ? args : args.slice(0, dash);
  const rest = dash === -1 ? [] : args.slice(dash);
  return runCommand(process.execPath, [AIRLOCK_BIN, ...own, '--data-dir', dataDir, ...rest],
    { env: shellEnv(), cwd: opts.cwd ?? REPO_ROOT, input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });
}

async function waitForPending(known: Set<string>, done: () => RunResult | null): Promise<ReviewView> {
  const until = Date.now() + 40_000;
  while (Date.now() < until) {
    const r = (await api.listReviews({ state: 'pending' })).find((x) => !known.has(x.id));
    if (r) return r;
    const d = done();
    if (d) assert.fail(`the push finished (code ${d.code}) without being held:\n${d.stderr}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail('no pending review within 40 s');
}

before(async () => {
  const pki = await createTestPki();
  gs = await startGitServer({ pki, auth: { username: 'alice', password: TOKEN } });
  repo = await gs.createRepo('proj', { seed: true });
  authority = `127.0.0.1:${gs.port}`;
  dataDir = await makeTempDir('airlock-cli-review-data-');
  home = await makeTempDir('airlock-cli-review-home-');
  serve = await spawnServe(dataDir, ['--proxy-port', '0', '--console-port', '0', '--upstream-ca', pki.caPath], cleanCliEnv());
  api = createHttpApiClient(serve.info.consoleUrl!, readFileSync(join(dataDir, 'admin-token'), 'utf8').trim());
  const add = await airlock(['agent', 'add', 'bot', '--json']);
  assert.equal(add.code, 0, add.stderr);
  work = join(home, 'w');
  await runGitOk(['clone', '-q', repo.dir, work], { env: gitEnvIsolated(home) });
  await runGitOk(['remote', 'set-url', 'origin', repo.url], { cwd: work, env: gitEnvIsolated(home) });
});

after(async () => {
  await serve?.close();
  await gs?.close();
  await removeDir(home);
  await removeDir(dataDir);
});

test('credential set reads the secret from stdin; list shows host and user, never the secret', async () => {
  // As cmd.exe's `echo TOKEN | airlock credential set …` sends it: the spaces and CRLF are not the
  // secret's (the push that lands upstream below authenticates with the trimmed token).
  const set = await airlock(['credential', 'set', authority, '--username', 'alice'], { input: ` ${TOKEN} \r\n` });
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, new RegExp(`Credential for ${authority.replace(/\./g, '\\.')} stored \\(basic, user alice\\)`));
  assert.ok(!set.stdout.includes(TOKEN) && !set.stderr.includes(TOKEN));
  const list = await airlock(['credential', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stdout.split('\n').includes(`${authority}\tbasic\talice`), list.stdout);
  assert.ok(!list.stdout.includes(TOKEN), 'the secret is listed');
  assert.ok(!list.stdout.includes(Buffer.from(`alice:${TOKEN}`).toString('base64')));
  assert.ok(!readFileSync(join(dataDir, 'credentials.json'), 'utf8').includes(TOKEN), 'plaintext on disk');
});

test('a push through `airlock run` is held; reviews, show, deny; a second decision is refused', async () => {
  const env = gitEnvIsolated(home);
  const line = `added by the agent ${randomBytes(4).toString('hex')}`;
  writeFileSync(join(work, 'agent.txt'), `${line}\n`);
  await runGitOk(['add', 'agent.txt'], { cwd: work, env });
  await runGitOk(['commit', '-q', '-m', 'agent commit'], { cwd: work, env });
  const before = await gs.refs('proj');

  const known = new Set((await api.listReviews({})).map((r) => r.id));
  let finished: RunResult | null = null;
  const push = airlock(['run', '--agent', 'bot', '--', 'git', 'push', 'origin', 'main'], { cwd: work, timeoutMs: 90_000 }).then((r) => (finished = r));
  const review = await waitForPending(known, () => finished);
  assert.equal(review.agent, 'bot');

  const [reviews, show] = await Promise.all([airlock(['reviews', '--status', 'pending']), airlock(['show', review.id])]);
  assert.equal(reviews.code, 0, reviews.stderr);
  const row = reviews.stdout.split('\n').find((l) => l.startsWith(`#${review.id}\t`));
  assert.ok(row, reviews.stdout);
  assert.match(row, new RegExp(`^#${review.id}\\tpending\\tbot\\t${authority.replace(/\./g, '\\.')}/+proj\\.git\\tfast-forward refs/heads/main\\texpires in`));
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, new RegExp(`^Review #${review.id}  PENDING`));
  assert.ok(show.stdout.includes(`+${line}`), show.stdout);
  assert.match(show.stdout, /A {2}agent\.txt \+1 −0/);

  const deny = await airlock(['deny', review.id, '--reason', 'nope']);
  assert.equal(deny.code, 0, deny.stderr);
  const m = new RegExp(`^Review #${review.id} denied by (.+): nope\\.$`, 'm').exec(deny.stdout);
  assert.ok(m, deny.stdout);
  const res = await push;
  assert.notEqual(res.code, 0);
  assert.ok(res.stderr.includes(` ! [remote rejected] main -> main (denied by ${m[1]}: nope)`), res.stderr);
  assert.deepEqual(await gs.refs('proj'), before);
  assert.ok(!gs.requests.some((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack')));

  const again = await airlock(['approve', review.id]);
  assert.equal(again.code, 1);
  assert.equal(again.stdout, '');
  const lines = again.stderr.trim().split('\n');
  assert.equal(lines.length, 1, again.stderr);
  assert.match(lines[0]!, new RegExp(`^airlock approve: review ${review.id} is already denied`));
  const noReason = await airlock(['deny', review.id]);
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /a denial needs --reason/);
});

test('an agent cannot approve its own push: no command in its terminal, the CLI refuses, the console is closed to it', async () => {
  const env = gitEnvIsolated(home);
  writeFileSync(join(work, 'self.txt'), 'please approve me\n');
  await runGitOk(['add', 'self.txt'], { cwd: work, env });
  await runGitOk(['commit', '-q', '-m', 'self-approval attempt'], { cwd: work, env });
  const known = new Set((await api.listReviews({})).map((r) => r.id));
  let finished: RunResult | null = null;
  const push = airlock(['run', '--agent', 'bot', '--', 'git', 'push', 'origin', 'main'], { cwd: work, timeoutMs: 90_000 }).then((r) => (finished = r));
  const review = await waitForPending(known, () => finished);

  // What a careless agent would try, from inside its own environment.
  const viaCli = await airlock(['run', '--agent', 'bot', '--', process.execPath, AIRLOCK_BIN, 'approve', review.id, '--data-dir', dataDir]);
  assert.equal(viaCli.code, 1, viaCli.stdout + viaCli.stderr);
  assert.match(viaCli.stderr, /^airlock approve: this shell routes agent "bot" through Airlock \(AIRLOCK_AGENT is set\): reviews are decided by a person/m);
  // Without the marker the CLI's request still goes through the proxy (the Node preload), which refuses Airlock's own ports.
  const unmarked = await airlock(['run', '--agent', 'bot', '--', 'env', '-u', 'AIRLOCK_AGENT', process.execPath, AIRLOCK_BIN, 'approve', review.id, '--data-dir', dataDir]);
  assert.notEqual(unmarked.code, 0, unmarked.stdout);
  assert.ok(!/approved by/.test(unmarked.stdout), unmarked.stdout);
  const viaCurl = await airlock(['run', '--agent', 'bot', '--', 'curl', '-sS', '-X', 'POST', `${serve!.info.consoleUrl}/api/approveReview`, '-w', '\n%{http_code}']);
  assert.match(viaCurl.stdout, /Airlock denied this request: agents cannot reach Airlock's own console or proxy through it.*\n403$/s);
  assert.equal((await api.getReview({ id: review.id })).state, 'pending', 'still pending after every attempt');
  const denied = (await api.listExchanges({ decision: 'deny' })).filter((x) => x.decision?.ruleId === 'builtin:deny-airlock-itself');
  assert.ok(denied.length >= 2 && denied.every((x) => x.agent === 'bot' && x.status === 403), JSON.stringify(denied));

  const deny = await airlock(['deny', review.id, '--reason', 'agents do not approve themselves']);
  assert.equal(deny.code, 0, deny.stderr);
  const res = await push;
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /remote: Airlock: a person reviews it in Airlock; this push waits for their decision/);
  assert.ok(!/airlock approve/.test(res.stderr), 'the agent is not told how to approve');
});

test('env rewrites SSH remotes of credentialed hosts to HTTPS; such a push is held and lands on approve', async () => {
  const envOut = await airlock(['env', '--agent', 'bot', '--json']);
  assert.equal(envOut.code, 0, envOut.stderr);
  const exported = new Map(Object.entries(JSON.parse(envOut.stdout) as Record<string, string>));
  const pairs = Array.from({ length: Number(exported.get('GIT_CONFIG_COUNT') ?? 0) }, (_, i) => `${exported.get(`GIT_CONFIG_KEY_${i}`)}=${exported.get(`GIT_CONFIG_VALUE_${i}`)}`);
  assert.ok(pairs.includes(`url.https://${authority}/.insteadOf=git@127.0.0.1:`), pairs.join('\n'));
  assert.ok(pairs.includes(`url.https://${authority}/.insteadOf=ssh://git@127.0.0.1/`), pairs.join('\n'));
  assert.match(exported.get('HTTPS_PROXY') ?? '', /^http:\/\/bot:[^@]+@127\.0\.0\.1:\d+$/);
  assert.ok(!envOut.stdout.includes(TOKEN), 'the upstream secret is in the agent env');

  // An SSH-form remote: `airlock run` rewrites it to HTTPS, so the push goes through Airlock (no ssh at all).
  const env = gitEnvIsolated(home);
  await runGitOk(['fetch', '-q', repo.dir, 'main'], { cwd: work, env });
  await runGitOk(['reset', '-q', '--hard', 'FETCH_HEAD'], { cwd: work, env });
  writeFileSync(join(work, 'via-ssh-form.txt'), 'routed through airlock\n');
  await runGitOk(['add', '.'], { cwd: work, env });
  await runGitOk(['commit', '-q', '-m', 'ssh-form remote'], { cwd: work, env });
  const oid = (await runGitOk(['rev-parse', 'HEAD'], { cwd: work, env })).stdout.trim();
  await runGitOk(['remote', 'set-url', 'origin', 'git@127.0.0.1:proj.git'], { cwd: work, env });

  const known = new Set((await api.listReviews({})).map((r) => r.id));
  let finished: RunResult | null = null;
  const push = airlock(['run', '--agent', 'bot', '--', 'git', 'push', 'origin', 'main'], { cwd: work, timeoutMs: 90_000 }).then((r) => (finished = r));
  const review = await waitForPending(known, () => finished);
  assert.equal(review.repo.replace(/^\/+/, ''), 'proj.git');
  // $USER is whatever the caller sets: the record names the account the OS says runs the decision.
  const ok = await runCommand(process.execPath, [AIRLOCK_BIN, 'approve', review.id, '--data-dir', dataDir],
    { env: { ...shellEnv(), USER: 'mallory', USERNAME: 'mallory' }, cwd: REPO_ROOT, timeoutMs: 60_000 });
  assert.equal(ok.code, 0, ok.stderr);
  const me = `local:${userInfo().username}`;
  assert.match(ok.stdout, new RegExp(`^Review #${review.id} approved by ${me}`));
  const res = await push;
  assert.equal(res.code, 0, res.stderr);
  assert.equal((await gs.refs('proj'))['refs/heads/main'], oid);
  assert.equal((await api.getReview({ id: review.id })).upstreamStatus, 200);
  // Who, how and which exchange: in the chain. (The CLI's decision says so; the web console's would say 'web console'.)
  const audit = await airlock(['audit', 'export']);
  const events = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { actor: string; action: string; subject: string; details: Record<string, unknown> });
  const approved = events.find((e) => e.action === 'review.approved' && e.subject === review.id)!;
  assert.equal(approved.actor, me);
  assert.equal(approved.details.via, 'cli');
  assert.equal(approved.details.exchangeId, review.exchangeId);
  assert.equal(approved.details.reason, null);
  const created = events.find((e) => e.action === 'review.created' && e.subject === review.id)!;
  assert.equal(created.details.exchangeId, review.exchangeId);
});

test('airlock status: where the running gateway listens and what waits; no admin token inside an agent shell; exit 1 when none runs', async () => {
  const s = await airlock(['status']);
  assert.equal(s.code, 0, s.stderr);
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  assert.match(s.stdout, /^Airlock \d+\.\d+\.\d+ is running \(pid \d+, since \d{4}-\d\d-\d\dT[\d:]+Z\)\.$/m);
  assert.ok(s.stdout.includes(`  proxy:    ${serve!.info.proxyUrl}\n`), s.stdout);
  assert.ok(s.stdout.includes(`  console:  ${serve!.info.consoleUrl}/#token=${token}\n`), s.stdout);
  assert.match(s.stdout, /^ {2}pending: {2}\d+ reviews?/m);
  assert.match(s.stdout, /^ {2}record: {3}on$/m);
  assert.match(s.stdout, /^ {2}disk: {5}[\d.]+[KMGT]? free/m);
  const j = await airlock(['status', '--json']);
  const info = JSON.parse(j.stdout) as { running: boolean; proxyUrl: string; agents: number; pendingReviews: number; exchanges: number; recording: { state: string } };
  assert.deepEqual(info.recording, { state: 'on' });
  assert.ok(typeof (info as unknown as { disk: { freeBytes: number } }).disk.freeBytes === 'number');
  assert.equal(info.running, true);
  assert.equal(info.proxyUrl, serve!.info.proxyUrl);
  assert.ok(info.agents >= 1);
  assert.equal(info.pendingReviews, (await api.listReviews({ state: 'pending' })).length);
  assert.equal(typeof info.exchanges, 'number');
  // In an agent's shell the console URL comes without the token that would let it decide reviews.
  const agentView = await airlock(['run', '--agent', 'bot', '--', process.execPath, AIRLOCK_BIN, 'status', '--data-dir', dataDir]);
  assert.equal(agentView.code, 0, agentView.stderr);
  assert.ok(agentView.stdout.includes(`  console:  ${serve!.info.consoleUrl}\n`), agentView.stdout);
  assert.ok(!agentView.stdout.includes(token), 'the admin token reached an agent shell');

  const empty = await makeTempDir('airlock-status-none-');
  try {
    const none = await runCommand(process.execPath, [AIRLOCK_BIN, 'status', '--data-dir', empty], { env: cleanCliEnv(), cwd: REPO_ROOT, timeoutMs: 30_000 });
    assert.equal(none.code, 1);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^airlock status: no Airlock gateway is running for .+; start one with `airlock serve`\n$/);
  } finally {
    await removeDir(empty);
  }
});

test('every `airlock run` is in the audit log: the token issued for it, and revoked with the exit code when it ends; its sessions name it', async () => {
  const r = await airlock(['run', '--agent', 'bot', '--', 'sh', '-c', `curl -sS -o /dev/null "${repo.url}/info/refs?service=git-upload-pack"; exit 3`]);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stderr, '');
  const exp = await airlock(['audit', 'export', '--format', 'jsonl']);
  assert.equal(exp.code, 0, exp.stderr);
  const events = exp.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; subject: string; actor: string; details: Record<string, unknown> });
  const last = events.filter((e) => e.action.startsWith('agent.token-')).slice(-2);
  assert.deepEqual(last.map((e) => e.action), ['agent.token-issued', 'agent.token-revoked']);
  const [start, end] = last as [typeof last[0], typeof last[0]];
  assert.equal(start.subject, 'bot');
  assert.match(String(start.details.for), /^run sh \(pid \d+\)$/);
  assert.match(String(start.details.token), /^[0-9a-f]{12}$/);
  assert.equal(end.details.token, start.details.token);
  assert.equal(end.details.exit, 3);
  assert.match(start.actor, /^local:/);
  // The connection curl made is a session that names the same token and run.
  // (The gateway writes in batches: bounded wait for the session's exchange to be on disk.)
  type S = { token: string | null; via: string | null; exchangeCount: number };
  let sessions: S[] = [];
  for (let i = 0; i < 20; i++) {
    sessions = JSON.parse((await airlock(['sessions', '--agent', 'bot', '--json'])).stdout) as S[];
    if (sessions.some((x) => x.token === start.details.token && x.exchangeCount > 0)) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  const mine = sessions.filter((x) => x.token === start.details.token);
  assert.equal(mine.length, 1, JSON.stringify(sessions));
  assert.equal(mine[0]!.via, start.details.for);
  assert.equal(mine[0]!.exchangeCount, 1);
  const table = await airlock(['sessions', '--agent', 'bot']);
  assert.ok(table.stdout.includes(String(start.details.for)), table.stdout);
  const verify = await airlock(['audit', 'verify']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

test('with no gateway running, reviews and show read the record (an auditor reads past decisions without starting one, which would write to it)', async () => {
  const live = JSON.parse((await airlock(['reviews', '--json'])).stdout) as ReviewView[];
  assert.ok(live.length >= 2);
  const r = await serve!.close();
  assert.equal(r.code, 0);
  const auditBefore = (await airlock(['audit', 'export'])).stdout;
  const offline = await airlock(['reviews', '--json']);
  assert.equal(offline.code, 0, offline.stderr);
  assert.match(offline.stderr, /no gateway is running: read from the record/);
  const list = JSON.parse(offline.stdout) as ReviewView[];
  assert.deepEqual(list.map((x) => [x.id, x.state, x.decidedBy, x.reason]), live.map((x) => [x.id, x.state, x.decidedBy, x.reason]));
  const shown = await airlock(['show', live[0]!.id]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`#${live[0]!.id}`));
  const missing = await airlock(['show', '9999']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no review with id 9999/);
  // Reading wrote nothing to the chain.
  assert.equal((await airlock(['audit', 'export'])).stdout.split('\n').filter(Boolean).length, auditBefore.split('\n').filter(Boolean).length + 1, 'only the export before is new');
});
