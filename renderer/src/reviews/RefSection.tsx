import { Visible } from '../shared/Visible';
import { useState } from 'react';
import type { CommitView, RefUpdateView } from '../../../main/contract';
import { ChangeBadge, FileStatusBadge } from '../shared/badges';
import { bytes, dateTime, firstLine, shortOid } from '../shared/format';
import { FileDiff, fileAnchor } from './FileDiff';

function Commit({ c }: { c: CommitView }) {
  const [open, setOpen] = useState(false);
  const rest = c.message.slice(firstLine(c.message).length).trim();
  return (
    <li className="commit">
      <div className="commit-line">
        <span className="oid mono">{shortOid(c.oid)}</span>
        <button type="button" className="commit-subject linklike" onClick={() => setOpen(!open)} aria-expanded={open} title="Show full message">
          <Visible text={firstLine(c.message)} />
        </button>
        <span className="muted commit-author">{c.author}</span>
        <span className="muted">{dateTime(c.authorDate)}</span>
      </div>
      {open ? (
        <div className="commit-body">
          <pre className="mono">{rest ? <Visible text={rest} /> : '(no message body)'}</pre>
          <div className="muted small">
            commit <span className="mono">{c.oid}</span> · committer {c.committer}
          </div>
        </div>
      ) : null}
    </li>
  );
}

export function RefSection({ update: r, index }: { update: RefUpdateView; index: number }) {
  const adds = r.files.reduce((n, f) => n + f.additions, 0);
  const dels = r.files.reduce((n, f) => n + f.deletions, 0);
  return (
    <section className="ref">
      <header className="ref-head">
        <ChangeBadge change={r.change} />
        <span className="ref-name mono">{r.ref}</span>
        <span className="mono muted">
          {shortOid(r.oldOid)} → {shortOid(r.newOid)}
        </span>
        <span className="spacer" />
        <span className="muted small">diff against {r.base}</span>
      </header>
      {r.omitted ? <div className="omitted">Not shown: {r.omitted}</div> : null}
      {r.change === 'forced' ? <div className="warn-line">Forced update: commits on the remote branch will be discarded.</div> : null}
      {r.change === 'delete' ? <div className="warn-line">This push deletes the ref.</div> : null}

      {r.commits.length > 0 ? (
        <>
          <h3 className="sub">
            {r.commits.length} commit{r.commits.length === 1 ? '' : 's'}
          </h3>
          <ul className="commits">
            {r.commits.map((c) => (
              <Commit key={c.oid} c={c} />
            ))}
          </ul>
        </>
      ) : null}

      {r.files.length > 0 ? (
        <>
          <h3 className="sub">
            {r.files.length} file{r.files.length === 1 ? '' : 's'} <span className="add">+{adds}</span> <span className="del">−{dels}</span>
          </h3>
          <table className="files">
            <tbody>
              {r.files.map((f, i) => (
                <tr key={`${f.path}:${i}`}>
                  <td>
                    <FileStatusBadge status={f.status} />
                  </td>
                  <td className="mono">
                    <a href={`#${fileAnchor(index, i)}`} onClick={(e) => {
                      e.preventDefault();
                      document.getElementById(fileAnchor(index, i))?.scrollIntoView({ block: 'start' });
                    }}>
                      <Visible text={f.path} />
                    </a>
                    {f.omitted ? <span className="omitted-dot" title={f.omitted}> (partial)</span> : null}
                  </td>
                  <td className="num">
                    {f.binary && !f.patch ? (
                      <span className="muted">
                        {bytes(f.oldSize)} → {bytes(f.newSize)}
                      </span>
                    ) : (
                      <>
                        <span className="add">+{f.additions}</span> <span className="del">−{f.deletions}</span>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="diffs">
            {r.files.map((f, i) => (
              <FileDiff key={`${f.path}:${i}`} file={f} anchor={fileAnchor(index, i)} />
            ))}
          </div>
        </>
      ) : r.change !== 'delete' ? (
        <p className="muted small">No file changes.</p>
      ) : null}
    </section>
  );
}
