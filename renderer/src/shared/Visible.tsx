// Agent-written text with the characters that change how it reads made visible: bidirectional
// controls (Trojan Source), zero-width and other invisible characters, and control characters are
// shown as a marked ⟨U+202E⟩ instead of acting on the text around them. Rendered as text, never HTML.
import { Fragment, type ReactElement } from 'react';

// Not tab, LF or CR (CRLF files show as they are).
// eslint-disable-next-line no-control-regex
const HIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

const NAMES: Record<number, string> = {
  0x202a: 'LEFT-TO-RIGHT EMBEDDING', 0x202b: 'RIGHT-TO-LEFT EMBEDDING', 0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE', 0x202e: 'RIGHT-TO-LEFT OVERRIDE', 0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE', 0x2068: 'FIRST STRONG ISOLATE', 0x2069: 'POP DIRECTIONAL ISOLATE',
  0x200b: 'ZERO WIDTH SPACE', 0x200c: 'ZERO WIDTH NON-JOINER', 0x200d: 'ZERO WIDTH JOINER', 0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK', 0x2060: 'WORD JOINER', 0xfeff: 'ZERO WIDTH NO-BREAK SPACE (BOM)', 0x00ad: 'SOFT HYPHEN',
  0x061c: 'ARABIC LETTER MARK', 0x001b: 'ESCAPE',
};

export function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function hasHidden(text: string): boolean {
  HIDDEN.lastIndex = 0;
  const found = HIDDEN.test(text);
  HIDDEN.lastIndex = 0; // matchAll starts where a global regex's lastIndex is
  return found;
}

export function Visible({ text }: { text: string }) {
  if (!hasHidden(text)) return <>{text}</>;
  const parts: ReactElement[] = [];
  let at = 0;
  let k = 0;
  for (const m of text.matchAll(HIDDEN)) {
    const i = m.index!;
    if (i > at) parts.push(<Fragment key={k++}>{text.slice(at, i)}</Fragment>);
    const code = codePoint(m[0]);
    const name = NAMES[m[0].codePointAt(0)!];
    parts.push(
      <span key={k++} className="hidden-char" title={name ? `${code} ${name}` : code} aria-label={name ?? code}>
        {`⟨${code}⟩`}
      </span>,
    );
    at = i + m[0].length;
  }
  if (at < text.length) parts.push(<Fragment key={k++}>{text.slice(at)}</Fragment>);
  return <>{parts}</>;
}
