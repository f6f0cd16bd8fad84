// Tray icon with the pending-review count; menu: Open, Quit.
import { Menu, Tray, nativeImage } from 'electron';
import { pendingLabel } from './text';

// 16x16 PNG: a ring with a dot, in a blue that reads on light and dark panels.
const ICON_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAALElEQVR42mOwbvrGQAlmoKYB/0nEtDOAkLPpZwBWJ48wAwYuFgYuJQ5MbgQApzsSv4SIi8EAAAAASUVORK5CYII=';

export interface AirlockTray {
  setPending(count: number): void;
  destroy(): void;
}

export function createTray(actions: { open(): void; quit(): void }): AirlockTray {
  const tray = new Tray(nativeImage.createFromDataURL(`data:image/png;base64,${ICON_PNG}`));
  let last = -1;
  const render = (count: number) => {
    if (count === last) return;
    last = count;
    tray.setToolTip(`Airlock — ${pendingLabel(count)}`);
    if (process.platform === 'darwin') tray.setTitle(count > 0 ? String(count) : '');
    tray.setContextMenu(
      Menu.buildFromTemplate([
        { label: pendingLabel(count), enabled: false },
        { type: 'separator' },
        { label: 'Open Airlock', click: actions.open },
        { label: 'Quit', click: actions.quit },
      ]),
    );
  };
  tray.on('click', actions.open);
  render(0);
  return {
    setPending: (count) => render(Math.max(0, Math.trunc(count))),
    destroy: () => tray.destroy(),
  };
}
