import { useMemo, useState } from 'react';
import { modeNote, type FileDiffView } from '../../../main/contract';
import { bytes } from '../shared/format';
import { FileStatusBadge } from '../shared/badges';
import { parsePatch } from './diff';
import { Visible } from '../shared/Visible';

const INITIAL_LINES = 2000;

export function fileAnchor(refIndex: number, fileIndex: number): string {
  return `file-${refIndex}-${fileIndex}`;
}

export function FileDiff({ file, anchor }: { file: FileDiffView; anchor: string }) {
  const [open, setOpen] = useState(true);
  const [all, setAll] = useState(false);
  const lines = useMemo(() => parsePatch(file.patch), [file.patch]);
  const shown = all ? lines : lines.slice(0, INITIAL_LINES);
  return (
    <section className="file" id={anchor}>
      <header className="file-head">
        <button type="button" className="btn btn-ghost btn-tiny" onClick={() => setOpen(!open)} aria-expanded={open}>
          {open ? '▾' : '▸'}
        </button>
        <FileStatusBadge status={file.status} />
        <span className="file-path mono">
          {file.oldPath && file.oldPath !== file.path ? (
            <>
              <Visible text={file.oldPath} /> → <Visible text={file.path} />
            </>
          ) : (
            <Visible text={file.path} />
          )}
        </span>
        {modeNote(file) ? <span className="mode-note mono">{modeNote(file)}</span> : null}
        <span className="spacer" />
        {file.binary && !file.patch ? (
          <span className="muted">
            binary {bytes(file.oldSize)} → {bytes(file.newSize)}
          </span>
        ) : (
          <span className="counts">
            <span className="add">+{file.additions}</span> <span className="del">−{file.deletions}</span>
          </span>
        )}
      </header>
      {file.omitted ? <div className="omitted">Not shown: {file.omitted}</div> : null}
      {open && file.binary && file.patch ? (
        <div className="file-note warn-note">
          Binary to git (it has a NUL byte or bytes that are not text), shown as text: the odd bytes are marked ⟨U+0000⟩.
        </div>
      ) : null}
      {open && lines.length > 0 ? (
        <table className="diff mono">
          <tbody>
            {shown.map((l, i) => (
              <tr key={i} className={`dl dl-${l.kind}`}>
                <td className="ln">{l.oldNo ?? ''}</td>
                <td className="ln">{l.newNo ?? ''}</td>
                <td className="sign">{l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ''}</td>
                <td className="code">
                  <Visible text={l.text} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {open && !all && lines.length > INITIAL_LINES ? (
        <button type="button" className="btn btn-ghost more" onClick={() => setAll(true)}>
          Show {lines.length - INITIAL_LINES} more lines
        </button>
      ) : null}
      {open && file.binary && !file.patch ? <div className="muted file-note">Binary file: contents not shown.</div> : null}
      {open && !file.binary && lines.length === 0 && !file.omitted ? <div className="muted file-note">No textual changes.</div> : null}
    </section>
  );
}
