// Local shape of main/service.ts, which the desktop shell loads at run time.
import type { AirlockClient } from '../contract';

export interface RunningAirlock {
  service: AirlockClient & { close(): Promise<void> };
  proxyUrl: string;
  consoleUrl: string | null;
  caPath: string;
}

export interface StartAirlockOptions {
  dataDir: string;
  proxyPort?: number;
  consolePort?: number | null;
}

export interface ServiceModule {
  startAirlock(opts: StartAirlockOptions): Promise<RunningAirlock>;
}
