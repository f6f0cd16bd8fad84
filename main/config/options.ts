import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AirlockError } from '../contract/errors';

/**
 * Every option Airlock has, with its default and help text (mitmproxy's
 * options.py idea): the CLI flags and `<data-dir>/config.yaml` both feed it.
 */
export const OptionsSchema = z.object({
  proxyPort: z.number().int().min(0).max(65535).default(8899).describe('Port of the proxy agents route through (0 picks a free one).'),
  consolePort: z.number().int().min(0).max(65535).nullable().default(8898).describe('Port of the web console and its API (null turns it off).'),
  upstreamCa: z.array(z.string()).default([]).describe('Extra CA files trusted for upstream TLS, on top of the system roots.'),
  systemCaFiles: z.array(z.string()).optional().describe("The operating system's trust store, trusted for upstream TLS with Node's built-in roots and NODE_EXTRA_CA_CERTS (default: the first of /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/ca-bundle.pem, /etc/ssl/cert.pem; [] trusts only Node's roots, NODE_EXTRA_CA_CERTS and upstreamCa)."),
  upstreamProxy: z.string().nullable().default(null).describe('A proxy Airlock\'s own upstream connections go through, for networks that reach the internet only through one: http://[USER:PASSWORD@]HOST:PORT. HTTPS and WebSockets go through it in a CONNECT tunnel (Airlock still verifies the origin\'s certificate itself), plain HTTP as absolute-form requests, git fetches of the push analysis with http.proxy. Never taken from HTTPS_PROXY: in a shell routed through Airlock that would point at Airlock itself.'),
  upstreamNoProxy: z.array(z.string()).default(['localhost', '127.0.0.0/8', '::1']).describe('Hosts reached directly although upstreamProxy is set: a name (and its subdomains), an address, an address range (10.0.0.0/8), or * for all.'),
  upstreamTimeoutMs: z.number().int().positive().default(600_000).describe('Time an upstream has to begin its response before the agent gets 504 (10 min: a model\'s answer may take minutes). A response that has begun is never cut for being quiet.'),
  connectTimeoutMs: z.number().int().positive().default(15_000).describe('Time allowed to open an upstream connection.'),
  clientHeadersTimeoutMs: z.number().int().positive().default(20_000).describe('Time a client has to send its request headers (slow clients get 408).'),
  clientBodyIdleTimeoutMs: z.number().int().nonnegative().default(60_000).describe('Longest silence allowed inside a request body (a push being uploaded, a POST) before Airlock gives the request up with 408 (default 60 s; 0 turns it off). A held push is read whole before anything goes upstream, so this is what frees a push whose upload stalled.'),
  clientTlsTimeoutMs: z.number().int().positive().default(15_000).describe('Time a client has to finish the TLS handshake inside a CONNECT tunnel.'),
  maxUpstreamRequestsPerAgentHost: z.number().int().positive().default(64).describe('Requests one agent may have open to one host at once; more get 503 (the 256 connections to a host are shared by every agent: one agent\'s hung or endless requests must not make the others wait).'),
  maxHeaderCount: z.number().int().positive().default(200).describe('Requests with more header lines than this get 431.'),
  maxHeaderBytes: z.number().int().min(1024).max(1024 ** 2).default(64 * 1024).describe('Largest request head (request line and headers) an agent may send; larger ones get 431 (default 64 KiB, as large as common servers accept).'),
  upstreamMaxHeaderBytes: z.number().int().min(1024).max(4 * 1024 ** 2).default(256 * 1024).describe('Largest response head accepted from an upstream; larger ones get 502 (default 256 KiB, as browsers accept).'),
  reviewTimeoutMs: z.number().int().positive().default(15 * 60_000).describe('A held push not decided within this time is denied as expired.'),
  maxPushBytes: z.number().int().positive().default(2 * 1024 ** 3).describe('Pushes larger than this are rejected.'),
  pushMinFreeBytes: z.number().int().nonnegative().default(1024 ** 3).describe('Pushes are refused while the disk that holds the data dir has less free space than this (default 1 GiB): a held push is spooled and kept there, and a full disk would stop the record, and with it every request.'),
  maxPushesPerAgent: z.number().int().positive().default(8).describe('Pushes one agent may have held for review or being analysed at once; more are rejected until a person decides (each may spool up to maxPushBytes).'),
  spoolThresholdBytes: z.number().int().positive().default(8 * 1024 ** 2).describe('Held bodies larger than this are spooled to disk.'),
  bodyCaptureBytes: z.number().int().nonnegative().default(1024 ** 2).describe('Bytes of each body kept in the log; larger bodies keep a hash and size.'),
  bodyStoreBytes: z.number().int().nonnegative().default(2 * 1024 ** 3).describe('Most bytes of bodies the log keeps in all (as stored, after compression; default 2 GiB). Beyond it the oldest exchanges lose their bodies first; their hashes, sizes and every other field stay.'),
  retentionDays: z.number().int().positive().default(90).describe('Exchanges older than this are pruned (the audit log never is).'),
  record: z.boolean().default(true).describe('Record exchanges in the local SQLite log.'),
  recordDiskWarnBytes: z.number().int().nonnegative().default(1024 ** 3).describe('Below this much free space on the disk that holds the record, the status, the console and `airlock status` warn (default 1 GiB): on a full disk Airlock refuses every request until space is freed.'),
  recordWriter: z.enum(['worker', 'inline']).default('inline').describe('Where exchange inserts run: inline (default: batched transactions on the proxy\'s thread, the WAL copied back into the database by a small thread of its own, so the proxy never waits for a checkpoint or an fsync) or a worker thread with its own connection (the proxy never runs SQLite at all; more CPU and memory in total; if the worker fails, recording continues inline).'),
});
export type Options = z.infer<typeof OptionsSchema>;
export type OptionsInput = z.input<typeof OptionsSchema>;

export function parseOptions(input: unknown, source: string): Options {
  const r = OptionsSchema.safeParse(input ?? {});
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new AirlockError('bad-request', `${source}: option ${first.path.join('.') || '(root)'}: ${first.message}`);
  }
  return r.data;
}

/** The longest `config.yaml` read. */
export const MAX_CONFIG_CHARS = 64 * 1024;

/** Reads `config.yaml` if it exists; CLI flags override its values. */
export function loadOptions(configFile: string, overrides: OptionsInput = {}): Options {
  let fromFile: Record<string, unknown> = {};
  let text: string | null = null;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AirlockError('bad-request', `cannot read ${configFile}: ${(e as Error).message}`);
    }
  }
  if (text !== null) {
    // A real config is a few lines; the YAML parser's duplicate-key check is quadratic in the keys
    // (40 000 keys: 13 s before the first unknown-option error), so a large file is refused first.
    if (text.length > MAX_CONFIG_CHARS) {
      throw new AirlockError('bad-request', `${configFile} is ${text.length} characters long; a config file is at most ${MAX_CONFIG_CHARS} (the options are listed by \`airlock serve --help\`)`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text) ?? {};
    } catch (e) {
      throw new AirlockError('bad-request', `${configFile} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new AirlockError('bad-request', `${configFile}: the file must be a mapping of option names to values (such as \`proxyPort: 8899\`)`);
    }
    fromFile = parsed as Record<string, unknown>;
    // A misspelt option would otherwise be dropped without a word, and its default used instead.
    const known = Object.keys(OptionsSchema.shape);
    for (const key of Object.keys(fromFile)) {
      if (known.includes(key)) continue;
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || k.toLowerCase().startsWith(key.toLowerCase()) || key.toLowerCase().startsWith(k.toLowerCase()));
      throw new AirlockError('bad-request', `${configFile}: unknown option ${JSON.stringify(key)}${near ? ` (did you mean ${near}?)` : ''}; the options are listed by \`airlock serve --help\``);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  if (Array.isArray(fromFile.upstreamCa) && Array.isArray(overrides.upstreamCa)) {
    merged.upstreamCa = [...(fromFile.upstreamCa as string[]), ...overrides.upstreamCa];
  }
  return parseOptions(merged, configFile);
}
