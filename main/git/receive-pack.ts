// Parses the body of `POST …/git-receive-pack` (gitprotocol-pack, "Reference Update Request
// and Packfile Transfer"). Pure: Buffer in, plain object out; throws GitProtocolError.
import { createHash } from 'node:crypto';
import { decodePkts, pktText } from './pkt-line';
import { GitProtocolError } from './errors';

export interface RefCommand {
  oldOid: string;
  newOid: string;
  ref: string;
}

export type SideBand = 'side-band-64k' | 'side-band' | null;

export interface ReceivePackRequest {
  commands: RefCommand[];
  capabilities: string[];
  pushOptions: string[];
  shallow: string[];
  /** Offset of the pack ('PACK' magic) in the body; body length when there is no pack. */
  packOffset: number;
  hasPack: boolean;
  /** The body is exactly `0000`: git's probe before a chunked (large) push. */
  isProbe: boolean;
  /** Pack version (2 or 3); null without a pack. */
  packVersion: number | null;
  /** Number of objects the pack header announces; null without a pack. */
  packObjectCount: number | null;
  sideBand: SideBand;
  /** report-status or report-status-v2 was requested. */
  reportStatus: boolean;
  /** Value of the agent= capability (e.g. 'git/2.39.5'), or null. */
  agent: string | null;
  objectFormat: 'sha1' | 'sha256';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isZeroOid(oid: string): boolean {
  return /^0+$/.test(oid);
}

/** Checks a ref name like `git check-ref-format` would, plus 'must start with refs/'. Returns a reason or null. */
export function refNameProblem(ref: string): string | null {
  if (!ref.startsWith('refs/')) return 'it does not start with refs/';
  if (/[\x00-\x20\x7f]/.test(ref)) return 'it contains a space or control character';
  if (ref.includes('..')) return "it contains '..'";
  if (/[~^:?*[\\]/.test(ref)) return 'it contains one of ~ ^ : ? * [ \\';
  if (ref.includes('@{')) return "it contains '@{'";
  if (ref.includes('//') || ref.endsWith('/')) return 'it has an empty path component';
  if (ref.endsWith('.') || ref.endsWith('.lock')) return "it ends with '.' or '.lock'";
  if (ref.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock'))) {
    return "a path component starts with '.' or ends with '.lock'";
  }
  return null;
}

function decodeUtf8(data: Buffer, what: string): string {
  try {
    return utf8.decode(data);
  } catch {
    throw new GitProtocolError(`The ${what} is not valid UTF-8.`);
  }
}

function stripLf(s: string): string {
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

export function parseReceivePackRequest(body: Buffer): ReceivePackRequest {
  const empty = {
    commands: [], capabilities: [], pushOptions: [], shallow: [], packOffset: body.length, hasPack: false,
    packVersion: null, packObjectCount: null, sideBand: null, reportStatus: false, agent: null,
    objectFormat: 'sha1' as const,
  };
  if (body.length === 4 && body.toString('latin1') === '0000') return { ...empty, isProbe: true };

  const { pkts, end } = decodePkts(body, 0);
  if (pkts.length === 0 || pkts[pkts.length - 1].type !== 'flush') {
    throw new GitProtocolError('The push request ends before the flush-pkt that closes its command list.');
  }
  const shallow: string[] = [];
  const commands: RefCommand[] = [];
  let capabilities: string[] = [];
  const rawCommands: Array<{ old: string; new: string; ref: string }> = [];
  for (const pkt of pkts.slice(0, -1)) {
    if (pkt.type !== 'data' || !pkt.data) {
      throw new GitProtocolError(`Unexpected ${pkt.type}-pkt in the push command list.`);
    }
    let data = pkt.data;
    const nul = data.indexOf(0);
    if (nul >= 0) {
      if (rawCommands.length > 0) throw new GitProtocolError('Only the first push command may carry capabilities.');
      capabilities = stripLf(decodeUtf8(data.subarray(nul + 1), 'capability list')).split(' ').filter((c) => c !== '');
      data = data.subarray(0, nul);
    }
    const line = stripLf(decodeUtf8(data, 'push command'));
    if (line.startsWith('shallow ')) {
      if (rawCommands.length > 0) throw new GitProtocolError('A shallow line follows the push commands.');
      shallow.push(line.slice(8));
      continue;
    }
    if (line.startsWith('push-cert')) throw new GitProtocolError('Signed pushes (push-cert) are not supported.');
    const m = /^(\S+) (\S+) (.+)$/s.exec(line);
    if (!m) throw new GitProtocolError(`Malformed push command ${JSON.stringify(line.slice(0, 200))}.`);
    rawCommands.push({ old: m[1], new: m[2], ref: m[3] });
  }
  if (rawCommands.length === 0) throw new GitProtocolError('The push request contains no ref update commands.');

  const fmtCap = capabilities.find((c) => c.startsWith('object-format='));
  const objectFormat = fmtCap === 'object-format=sha256' ? 'sha256' : 'sha1';
  if (fmtCap && fmtCap !== 'object-format=sha256' && fmtCap !== 'object-format=sha1') {
    throw new GitProtocolError(`Unsupported ${fmtCap}.`);
  }
  const hexLen = objectFormat === 'sha256' ? 64 : 40;
  const oidRe = new RegExp(`^[0-9a-f]{${hexLen}}$`);
  for (const s of shallow) {
    if (!oidRe.test(s)) throw new GitProtocolError(`Bad object id ${JSON.stringify(s.slice(0, 80))} in a shallow line.`);
  }
  const seen = new Set<string>();
  for (const c of rawCommands) {
    for (const oid of [c.old, c.new]) {
      if (!oidRe.test(oid)) {
        throw new GitProtocolError(`Bad object id ${JSON.stringify(oid.slice(0, 80))} for ${JSON.stringify(c.ref.slice(0, 200))}: expected ${hexLen} lowercase hex digits.`);
      }
    }
    const problem = refNameProblem(c.ref);
    if (problem) throw new GitProtocolError(`Bad ref name ${JSON.stringify(c.ref.slice(0, 200))}: ${problem}.`);
    if (seen.has(c.ref)) throw new GitProtocolError(`The ref ${c.ref} is updated twice in one push.`);
    seen.add(c.ref);
    if (isZeroOid(c.old) && isZeroOid(c.new)) throw new GitProtocolError(`The command for ${c.ref} has two zero object ids.`);
    commands.push({ oldOid: c.old, newOid: c.new, ref: c.ref });
  }

  let pos = end;
  const pushOptions: string[] = [];
  if (capabilities.includes('push-options')) {
    const opts = decodePkts(body, pos);
    if (opts.pkts.length === 0 || opts.pkts[opts.pkts.length - 1].type !== 'flush') {
      throw new GitProtocolError('The push options section ends before its flush-pkt.');
    }
    for (const pkt of opts.pkts.slice(0, -1)) {
      if (pkt.type !== 'data' || !pkt.data) throw new GitProtocolError(`Unexpected ${pkt.type}-pkt in the push options.`);
      pushOptions.push(stripLf(decodeUtf8(pkt.data, 'push option')));
    }
    pos = opts.end;
  }

  const needsPack = commands.some((c) => !isZeroOid(c.newOid));
  const hasPack = pos < body.length;
  if (!hasPack && needsPack) throw new GitProtocolError('The push updates refs but carries no pack.');
  let packVersion: number | null = null;
  let packObjectCount: number | null = null;
  if (hasPack) {
    ({ version: packVersion, objectCount: packObjectCount } = checkPack(body.subarray(pos), objectFormat));
  }

  const sideBand: SideBand = capabilities.includes('side-band-64k') ? 'side-band-64k'
    : capabilities.includes('side-band') ? 'side-band' : null;
  const agentCap = capabilities.find((c) => c.startsWith('agent='));
  return {
    commands, capabilities, pushOptions, shallow, packOffset: pos, hasPack, isProbe: false,
    packVersion, packObjectCount, sideBand,
    reportStatus: capabilities.includes('report-status') || capabilities.includes('report-status-v2'),
    agent: agentCap ? agentCap.slice('agent='.length) : null,
    objectFormat,
  };
}

/** Validates a pack's header and trailing checksum; returns its version and object count. */
export function checkPack(pack: Buffer, objectFormat: 'sha1' | 'sha256' = 'sha1'): { version: number; objectCount: number } {
  const hashLen = objectFormat === 'sha256' ? 32 : 20;
  if (pack.length < 4 || pack.toString('latin1', 0, 4) !== 'PACK') {
    throw new GitProtocolError("The data after the push commands is not a pack (no 'PACK' signature).");
  }
  if (pack.length < 12 + hashLen) throw new GitProtocolError('Truncated or corrupt pack: it is shorter than a pack header and checksum.');
  const version = pack.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new GitProtocolError(`The pushed pack has unsupported version ${version}.`);
  const objectCount = pack.readUInt32BE(8);
  const digest = createHash(objectFormat === 'sha256' ? 'sha256' : 'sha1')
    .update(pack.subarray(0, pack.length - hashLen)).digest();
  if (!digest.equals(pack.subarray(pack.length - hashLen))) {
    throw new GitProtocolError('Truncated or corrupt pack: its trailing checksum does not match its content.');
  }
  return { version, objectCount };
}
