// The main window: isolated, sandboxed, no Node, no navigation away from the app.
import { BrowserWindow, session, shell, type WebContents } from 'electron';
import { PRELOAD_PATH, RENDERER_INDEX, RENDERER_URL } from './paths';
import { RENDERER_CSP } from './csp';

export const WEB_PREFERENCES = {
  preload: PRELOAD_PATH,
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  webviewTag: false,
  navigateOnDragDrop: false,
  spellcheck: false,
} as const;

function sameDocument(url: string): boolean {
  const strip = (u: string) => (u.includes('#') ? u.slice(0, u.indexOf('#')) : u);
  return strip(url) === RENDERER_URL;
}

let hardened = false;
/** Session-wide guards, installed once. */
export function hardenSession(): void {
  if (hardened) return;
  hardened = true;
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [RENDERER_CSP] } });
  });
}

export function guardWebContents(wc: WebContents): void {
  wc.setWindowOpenHandler(({ url }) => {
    // Links to the web (docs, upstream repos) open in the user's browser, never in-app.
    if (/^https:\/\//i.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  wc.on('will-navigate', (event, url) => {
    if (!sameDocument(url)) event.preventDefault();
  });
  wc.on('will-redirect', (event, url) => {
    if (!sameDocument(url)) event.preventDefault();
  });
  wc.on('will-attach-webview', (event) => event.preventDefault());
}

export function createMainWindow(): BrowserWindow {
  hardenSession();
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Airlock',
    autoHideMenuBar: true,
    webPreferences: { ...WEB_PREFERENCES },
  });
  guardWebContents(win.webContents);
  win.once('ready-to-show', () => win.show());
  void win.loadFile(RENDERER_INDEX);
  return win;
}

/** Shows, focuses and (optionally) routes the window to a review. */
export function focusWindow(win: BrowserWindow, reviewId?: string): void {
  if (win.isMinimized()) win.restore();
  win.show();
  win.focus();
  if (reviewId) {
    // A hash change only: the renderer's router picks it up, no reload, no new API surface.
    const hash = `#/reviews/${encodeURIComponent(reviewId)}`;
    void win.webContents.executeJavaScript(`location.hash = ${JSON.stringify(hash)}; void 0`);
  }
}
