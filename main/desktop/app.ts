import { app } from 'electron';

export async function runDesktopApp(): Promise<void> {
  await app.whenReady();
}
