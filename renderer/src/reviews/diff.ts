// Unified-diff hunks -> numbered lines. Pure; the text stays text.
export type DiffLineKind = 'hunk' | 'context' | 'add' | 'del' | 'note';

export interface DiffLine {
  kind: DiffLineKind;
  oldNo: number | null;
  newNo: number | null;
  text: string;
}

export function parsePatch(patch: string): DiffLine[] {
  const out: DiffLine[] = [];
  if (!patch) return out;
  let oldNo = 0;
  let newNo = 0;
  const lines = patch.split('\n');
  if (lines.length > 0 && lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const h = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (h) {
      oldNo = Number(h[1]);
      newNo = Number(h[2]);
      out.push({ kind: 'hunk', oldNo: null, newNo: null, text: line });
      continue;
    }
    const c = line[0];
    const text = line.slice(1);
    if (c === '+') out.push({ kind: 'add', oldNo: null, newNo: newNo++, text });
    else if (c === '-') out.push({ kind: 'del', oldNo: oldNo++, newNo: null, text });
    else if (c === '\\') out.push({ kind: 'note', oldNo: null, newNo: null, text: line });
    else out.push({ kind: 'context', oldNo: oldNo++, newNo: newNo++, text: c === ' ' ? text : line });
  }
  return out;
}
