import type { FileStatus, RefChange, ReviewState, Verdict } from '../../../main/contract';

export function StateBadge({ state }: { state: ReviewState }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

export function ChangeBadge({ change }: { change: RefChange }) {
  return <span className={`badge change-${change}`}>{change}</span>;
}

export function VerdictBadge({ verdict }: { verdict: Verdict | null }) {
  if (!verdict) return <span className="muted">—</span>;
  return <span className={`badge verdict-${verdict}`}>{verdict}</span>;
}

const FILE_LETTER: Record<FileStatus, string> = {
  added: 'A',
  modified: 'M',
  deleted: 'D',
  renamed: 'R',
  copied: 'C',
  'mode-change': 'T',
  'type-change': 'T',
};

export function FileStatusBadge({ status }: { status: FileStatus }) {
  return (
    <span className={`fstat fstat-${status}`} title={status}>
      {FILE_LETTER[status]}
    </span>
  );
}
