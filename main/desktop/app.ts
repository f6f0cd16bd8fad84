// App lifecycle: single instance, start the core service, window, tray, IPC.
import { app, BrowserWindow, dialog, ipcMain, powerMonitor } from 'electron';
import { AirlockError, type AirlockClient } from '../contract';
import { createMainWindow, focusWindow } from './window';
import { createTray, type AirlockTray } from './tray';
import { createReviewNotifier } from './notifications';
import { forwardEvents, registerIpc } from './ipc';
import { desktopDirs, RENDERER_URL, SERVICE_MODULE_URL } from './paths';
import type { RunningAirlock, ServiceModule } from './types';
import { tuneForGateway } from '../runtime';

/** Stands in for the service when it failed to start, so the window can say why. */
function unavailableService(message: string): AirlockClient & { close(): Promise<void> } {
  const fail = async () => {
    throw new AirlockError('unavailable', message);
  };
  return {
    getStatus: fail, listExchanges: fail, listSessions: fail, getExchange: fail, listReviews: fail, getReview: fail,
    approveReview: fail, denyReview: fail, listAgents: fail, verifyAudit: fail, exportHar: fail,
    subscribe: () => () => {},
    close: async () => {},
  };
}

async function startService(dataDir: string): Promise<RunningAirlock> {
  const mod = (await import(/* @vite-ignore */ SERVICE_MODULE_URL)) as ServiceModule;
  const proxyPort = process.env.AIRLOCK_PROXY_PORT ? Number(process.env.AIRLOCK_PROXY_PORT) : undefined;
  return mod.startAirlock({ dataDir, proxyPort, consolePort: null });
}

export async function runDesktopApp(): Promise<void> {
  // Before the single-instance lock, which lives in the profile.
  const { dataDir, profileDir } = desktopDirs();
  app.setPath('userData', profileDir);
  // Windows shows toasts only for an app with a user model id (the installer's appId).
  if (process.platform === 'win32') app.setAppUserModelId(APP_USER_MODEL_ID);
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  tuneForGateway();
  let win: BrowserWindow | null = null;
  let tray: AirlockTray | null = null;
  let running: RunningAirlock | null = null;
  let quitting = false;

  // Windows does not emit will-quit when the user logs off or shuts down (a window's 'session-end'
  // comes instead), and macOS/Linux shutdowns may not either: close the record first (held pushes
  // rejected, every exchange written).
  const closeForShutdown = (e?: { preventDefault(): void }) => {
    if (!running) return;
    const r = running;
    running = null;
    e?.preventDefault();
    void r.service.close().catch((err: unknown) => console.error('[airlock] close', err)).finally(() => app.quit());
  };

  const open = (reviewId?: string) => {
    if (!win || win.isDestroyed()) win = makeWindow();
    focusWindow(win, reviewId);
  };
  const makeWindow = () => {
    const w = createMainWindow();
    w.on('close', (e) => {
      // The gateway keeps holding pushes while the window is closed; quit from the tray.
      if (!quitting && tray) {
        e.preventDefault();
        w.hide();
      }
    });
    w.on('session-end', () => closeForShutdown());
    w.on('closed', () => {
      if (win === w) win = null;
    });
    return w;
  };

  app.on('second-instance', () => open());
  app.on('activate', () => open());
  app.on('web-contents-created', (_e, wc) => {
    // No secondary windows or webviews, whoever asks.
    wc.setWindowOpenHandler(() => ({ action: 'deny' }));
    wc.on('will-attach-webview', (ev) => ev.preventDefault());
  });
  app.on('window-all-closed', () => {
    if (!tray) app.quit();
  });
  app.on('before-quit', () => {
    quitting = true;
  });
  app.on('will-quit', (e) => closeForShutdown(e));

  await app.whenReady();
  powerMonitor.on('shutdown', closeForShutdown);

  let service: AirlockClient;
  try {
    running = await startService(dataDir);
    service = running.service;
  } catch (err) {
    const msg = `Airlock could not start: ${(err as Error).message}`;
    console.error('[airlock]', err);
    service = unavailableService(msg);
    void dialog.showMessageBox({ type: 'error', title: 'Airlock', message: 'Airlock could not start', detail: (err as Error).message });
  }

  registerIpc({ ipcMain, service, trusted: () => (win && !win.isDestroyed() ? win.webContents : null), appUrl: RENDERER_URL });
  const notifier = createReviewNotifier((id) => open(id), () => open());
  try {
    tray = createTray({ open: () => open(), quit: () => app.quit() });
  } catch (err) {
    console.error('[airlock] no tray', err);
  }
  forwardEvents(service, () => (win && !win.isDestroyed() ? win.webContents : null), (event) => {
    if (event.type === 'status') tray?.setPending(event.status.counts.pendingReviews);
    notifier.onEvent(event);
  });
  service.getStatus().then((s) => tray?.setPending(s.counts.pendingReviews), () => {});
  // A second launch or a Dock click during a slow start may have opened it already.
  const existing = win as BrowserWindow | null;
  if (!existing || existing.isDestroyed()) win = makeWindow();
}

/** Must match the installer's appId (electron-builder's `appId`) for Windows toasts to show. */
const APP_USER_MODEL_ID = 'dev.airlock.desktop';
