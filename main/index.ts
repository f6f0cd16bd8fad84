// Electron main-process entry: glue only. Everything else lives in main/desktop/.
import { runDesktopApp } from './desktop/app';

void runDesktopApp();
