import type { Readable } from 'node:stream';
import type { Exchange } from '../exchange/exchange';

/**
 * What a stage may do to the client side of an exchange. Implemented by the
 * gateway (the only code that owns sockets); stages never touch sockets.
 */
export interface RequestIO {
  /** The request body as a stream (not yet consumed). */
  readonly body: Readable;
  /** Answer the client directly; nothing goes upstream. */
  respond(status: number, headers: Record<string, string>, body: Buffer | string): void;
  /** Start a streamed answer to the client (for held git pushes that send progress while they wait). */
  respondStream(status: number, headers: Record<string, string>): { write(chunk: Buffer): void; end(chunk?: Buffer): void };
  /** Send the request upstream with this exact body instead of the client's stream; resolves when the response has been relayed. */
  forwardWith(body: Buffer | (() => Readable), bodyLength: number): Promise<void>;
  /** Send the request upstream with this exact body and hand back upstream's response, unrelayed (rejects with a sentence on failure). */
  fetchUpstream(body: Buffer | (() => Readable), bodyLength: number): Promise<import('node:http').IncomingMessage>;
  /** The stored upstream credential for this host: its Authorization header value and the strings to mask. */
  readonly credential: { header: string; secrets: string[] } | null;
  /** Resolves/fires when the client goes away before the exchange finished. */
  onClientGone(cb: () => void): void;
}

export type StageResult = void | 'handled';

/**
 * One step of the data path (mitmproxy's addon idea with typed, explicit hooks).
 * `onRequest` runs after the request headers arrive, in the order of
 * `default-stages.ts`; returning 'handled' means the stage answered the client
 * (deny, hold then forward/reject) and later stages and the default forward are skipped.
 * `onDone` runs once per exchange, after the response ended or failed.
 */
export interface Stage {
  readonly name: string;
  onRequest?(ex: Exchange, io: RequestIO): StageResult | Promise<StageResult>;
  onDone?(ex: Exchange): void;
}
