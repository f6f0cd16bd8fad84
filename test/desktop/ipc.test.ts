// The IPC handler's checks, with FAKES of Electron's ipcMain / WebContents / frame:
// the Electron binary cannot run here. The service behind it is the transport
// test double from test/console/fixture-api.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IpcMainInvokeEvent, WebContents } from 'electron';
import { isTrustedSender, registerIpc, forwardEvents } from '../../main/desktop/ipc';
import { plainNotificationText, pendingLabel } from '../../main/desktop/text';
import { IPC_EVENT_CHANNEL, IPC_INVOKE_CHANNEL, type AirlockEvent } from '../../main/contract';
import { createFixtureApi } from '../console/fixture-api';

const APP_URL = 'file:///opt/airlock/out/renderer/index.html';

type Handler = (event: IpcMainInvokeEvent, ...args: unknown[]) => Promise<unknown>;

/** FAKE ipcMain: records the one handler. */
function fakeIpcMain() {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    handle(channel: string, h: Handler) {
      assert.ok(!handlers.has(channel), 'registered once');
      handlers.set(channel, h);
    },
    removeHandler(channel: string) {
      handlers.delete(channel);
    },
  };
}

/** FAKE WebContents with a main frame (and optionally a child frame). */
function fakeWebContents(url = APP_URL) {
  const sent: { channel: string; args: unknown[] }[] = [];
  const mainFrame = { url };
  const wc = {
    mainFrame,
    sent,
    isDestroyed: () => false,
    send: (channel: string, ...args: unknown[]) => sent.push({ channel, args }),
  };
  return wc as unknown as WebContents & { sent: typeof sent; mainFrame: { url: string } };
}

function ev(sender: WebContents, frame: unknown): IpcMainInvokeEvent {
  return { sender, senderFrame: frame } as unknown as IpcMainInvokeEvent;
}

function setup() {
  const ipc = fakeIpcMain();
  const api = createFixtureApi();
  const trusted = fakeWebContents();
  const dispose = registerIpc({ ipcMain: ipc as never, service: api, trusted: () => trusted, appUrl: APP_URL });
  const handler = ipc.handlers.get(IPC_INVOKE_CHANNEL)!;
  return { ipc, api, trusted, handler, dispose };
}

test('registers exactly one invoke handler and can remove it', () => {
  const { ipc, dispose } = setup();
  assert.deepEqual([...ipc.handlers.keys()], [IPC_INVOKE_CHANNEL]);
  dispose();
  assert.equal(ipc.handlers.size, 0);
});

test('dispatches API methods for the trusted main frame', async () => {
  const { handler, trusted, api } = setup();
  const r = (await handler(ev(trusted, trusted.mainFrame), 'listReviews', { state: 'pending' })) as { ok: boolean; value: unknown[] };
  assert.equal(r.ok, true);
  assert.equal(r.value.length, 1);
  assert.deepEqual(api.calls.at(-1), { method: 'listReviews', arg: { state: 'pending' } });
  // The app URL with a route hash is still the app.
  trusted.mainFrame.url = APP_URL + '#/reviews/rv-0001';
  assert.equal(((await handler(ev(trusted, trusted.mainFrame), 'getStatus', undefined)) as { ok: boolean }).ok, true);
});

test('refuses other webContents, subframes and navigated-away pages', async () => {
  const { handler, trusted, api } = setup();
  const before = api.calls.length;
  const other = fakeWebContents();
  const r1 = await handler(ev(other, other.mainFrame), 'getStatus', undefined);
  assert.deepEqual(r1, { ok: false, error: { code: 'unauthorized', message: 'IPC call from an untrusted frame was refused.' } });
  const r2 = await handler(ev(trusted, { url: APP_URL }), 'getStatus', undefined); // a child frame object
  assert.equal((r2 as { ok: boolean }).ok, false);
  trusted.mainFrame.url = 'https://evil.example/';
  const r3 = await handler(ev(trusted, trusted.mainFrame), 'getStatus', undefined);
  assert.equal((r3 as { ok: boolean }).ok, false);
  assert.equal(api.calls.length, before, 'the service was never called');
  assert.equal(isTrustedSender(ev(trusted, trusted.mainFrame), null, APP_URL), false);
});

test('refuses method names outside API_METHODS', async () => {
  const { handler, trusted } = setup();
  for (const m of ['subscribe', 'close', 'constructor', '__proto__', 'toString', 42, null]) {
    const r = (await handler(ev(trusted, trusted.mainFrame), m, {})) as { ok: boolean; error: { code: string } };
    assert.equal(r.ok, false, String(m));
    assert.equal(r.error.code, 'bad-request');
  }
});

test('AirlockError crosses as { code, message }; other errors do not leak', async () => {
  const { handler, trusted, api } = setup();
  const call = (m: string, a: unknown) => handler(ev(trusted, trusted.mainFrame), m, a) as Promise<{ ok: boolean; error?: { code: string; message: string } }>;
  assert.equal((await call('approveReview', { id: 'rv-0001', via: 'cli' })).ok, true);
  // A decision made in the window is recorded as made in the desktop app, whatever the renderer claims.
  assert.deepEqual(api.calls.at(-1), { method: 'approveReview', arg: { id: 'rv-0001', via: 'desktop' } });
  // So is an export (its audit event names the channel).
  assert.equal((await call('exportHar', { agent: 'x', via: 'web console' })).ok, true);
  assert.deepEqual(api.calls.at(-1), { method: 'exportHar', arg: { agent: 'x', via: 'desktop' } });
  assert.equal((await call('exportHar', null)).ok, true);
  assert.deepEqual(api.calls.at(-1), { method: 'exportHar', arg: { via: 'desktop' } });
  const again = await call('denyReview', { id: 'rv-0001', reason: 'x' });
  assert.deepEqual(Object.keys(again.error!).sort(), ['code', 'message']);
  assert.equal(again.error!.code, 'conflict');
  api.verifyAudit = async () => {
    throw new Error('db path /secret/x');
  };
  const orig = console.error;
  console.error = () => {};
  try {
    const boom = await call('verifyAudit', {});
    assert.equal(boom.error!.code, 'internal');
    assert.doesNotMatch(boom.error!.message, /secret/);
  } finally {
    console.error = orig;
  }
});

test('service events are pushed to the trusted window on the event channel', () => {
  const api = createFixtureApi();
  const wc = fakeWebContents();
  const seen: AirlockEvent[] = [];
  const off = forwardEvents(api, () => wc, (e) => seen.push(e));
  const r = api.addPendingReview();
  off();
  api.addPendingReview();
  assert.ok(wc.sent.length >= 2);
  assert.ok(wc.sent.every((s) => s.channel === IPC_EVENT_CHANNEL));
  assert.ok(wc.sent.some((s) => (s.args[0] as AirlockEvent).type === 'review' && (s.args[0] as { review: { id: string } }).review.id === r.id));
  assert.equal(seen.length, wc.sent.length, 'unsubscribed after off()');
});

test('notification text is plain and bounded', () => {
  assert.equal(plainNotificationText('claude → github.com/acme/widgets', 'darwin'), 'claude → github.com/acme/widgets');
  assert.equal(plainNotificationText('<b>x</b> & y', 'linux'), '＜b＞x＜/b＞ ＆ y');
  assert.equal(plainNotificationText('a\nb\u202ec\u0007', 'darwin'), 'a b c');
  assert.ok(plainNotificationText('x'.repeat(1000), 'darwin').length <= 160);
  assert.equal(pendingLabel(0), 'No pushes waiting');
  assert.equal(pendingLabel(3), '3 reviews pending');
});

test("the desktop app uses the CLI's data dir (so `airlock status`/`approve` see its gateway); Electron's profile goes in a folder inside it", async () => {
  const { desktopDirs } = await import('../../main/desktop/paths');
  const { defaultDataDir } = await import('../../main/config/paths');
  for (const platform of ['linux', 'darwin', 'win32'] as const) {
    const env = { APPDATA: 'C:\\Users\\me\\AppData\\Roaming' };
    const d = desktopDirs(env, platform);
    assert.equal(d.dataDir, defaultDataDir(env, platform), platform);
    assert.ok(d.profileDir.startsWith(d.dataDir) && d.profileDir !== d.dataDir, platform);
  }
  assert.equal(desktopDirs({ AIRLOCK_DATA_DIR: '/tmp/airlock-x' }, 'linux').dataDir, '/tmp/airlock-x');
});
