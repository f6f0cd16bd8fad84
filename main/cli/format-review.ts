// A review for `airlock reviews` and `airlock show ID`. Nearly all of it was written by the agent
// (commit messages, paths, the diff, branch names): every line goes through `plain()`, so a terminal
// never receives its escape sequences (a line that moves the cursor up and overwrites the one before
// would hide it from the reviewer) nor bidi or zero-width characters; tabs in a diff stay tabs.
import { duration, modeNote, type ReviewView } from '../contract/views';
import { plain } from './format-record';

function ago(iso: string, now = Date.now()): string {
  // As the console shows it (rounded down: "in 14m 34s", never a minute more than is left).
  const ms = new Date(iso).getTime() - now;
  return ms >= 0 ? `in ${duration(ms)}` : `${duration(-ms)} ago`;
}

/** One line per review, for `airlock reviews`. */
export function reviewLine(r: ReviewView): string {
  const when = r.state === 'pending' ? `expires ${ago(r.expiresAt)}` : `${r.decidedBy ?? ''} ${r.decidedAt ? ago(r.decidedAt) : ''}`.trim();
  const critical = r.findings.filter((f) => f.severity === 'critical').length;
  const fields = [`#${r.id}`, r.state, r.agent, `${r.host}/${r.repo}`, r.refs.map((x) => `${x.change} ${x.ref}`).join(', '), when,
    ...(critical > 0 ? [`${critical} CRITICAL finding${critical === 1 ? '' : 's'}: airlock show ${r.id}`] : [])];
  return fields.map(plain).join('\t');
}

const STATUS_LETTER: Record<string, string> = {
  added: 'A', modified: 'M', deleted: 'D', renamed: 'R', copied: 'C', 'mode-change': 'M', 'type-change': 'T',
};

/** The whole review as plain text, diff included (`airlock show ID`). */
export function reviewText(r: ReviewView): string {
  const out: string[] = [];
  out.push(`Review #${r.id}  ${r.state.toUpperCase()}${r.state === 'pending' ? `  (expires ${ago(r.expiresAt)})` : ''}`);
  out.push(`agent:   ${r.agent}`);
  out.push(`target:  https://${r.host}/${r.repo}`);
  out.push(`body:    ${r.bodyBytes} bytes, sha256 ${r.bodySha256}`);
  out.push(`created: ${r.createdAt}`);
  if (r.decidedAt) out.push(`decided: ${r.state} by ${r.decidedBy} at ${r.decidedAt}${r.reason ? ` — ${r.reason}` : ''}`);
  if (r.upstreamStatus !== null) out.push(`upstream answered: HTTP ${r.upstreamStatus}`);
  if (r.upstreamResult !== null) out.push(`upstream result: ${r.upstreamResult === 'ok' ? 'ok, every ref updated' : r.upstreamResult}`);
  out.push(`summary: ${r.summary}`);
  for (const f of r.findings) out.push(`finding [${f.severity}] ${f.rule}: ${f.message}${f.path ? ` (${f.path}${f.line ? `:${f.line}` : ''})` : ''}`);
  for (const ref of r.refs) {
    out.push('');
    out.push(`== ${ref.ref}  ${ref.change}  ${ref.oldOid.slice(0, 10)}..${ref.newOid.slice(0, 10)}  (diff against ${ref.base})`);
    if (ref.commits.length) {
      out.push('commits:');
      for (const c of ref.commits) {
        out.push(`  ${c.oid.slice(0, 10)}  ${c.author}  ${c.authorDate}`);
        for (const line of c.message.trimEnd().split('\n')) out.push(`      ${line}`);
      }
    }
    if (ref.files.length) {
      out.push('files:');
      for (const f of ref.files) {
        const size = f.binary ? ` binary ${f.oldSize ?? 0} → ${f.newSize ?? 0} bytes` : ` +${f.additions} −${f.deletions}`;
        const note = modeNote(f);
        const mode = note ? ` [${note}]` : '';
        out.push(`  ${STATUS_LETTER[f.status] ?? '?'}  ${f.oldPath && f.oldPath !== f.path ? `${f.oldPath} → ` : ''}${f.path}${size}${mode}`);
      }
      for (const f of ref.files) {
        if (!f.patch && !f.omitted) continue;
        out.push('');
        out.push(`--- ${f.oldPath ?? f.path}`);
        out.push(`+++ ${f.path}`);
        if (f.patch) out.push(f.patch.trimEnd());
        if (f.omitted) out.push(`[omitted: ${f.omitted}]`);
      }
    }
    if (ref.omitted) out.push(`[omitted: ${ref.omitted}]`);
  }
  return out.flatMap((l) => l.split('\n')).map((l) => l.split('\t').map(plain).join('\t')).join('\n') + '\n';
}
