// Findings for text that reads differently from what it is: bidirectional controls (the "Trojan Source"
// attack: code that a reviewer reads one way and a compiler another), invisible characters, and terminal
// control characters, in the added lines of a push's diff, its file paths, ref names and commit messages.
// The diff is shown with these characters marked (renderer `Visible`, CLI `plain()`); the finding makes
// sure the reviewer notices them before deciding.
import type { FindingView, RefUpdateView } from '../contract/views';

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const INVISIBLE = /[\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f]/; // not tab, LF, FF, CR (CRLF files, page breaks)

/** `U+202E` for the first matching character of `re` in `s`. */
function codeOf(s: string, re: RegExp): string {
  const c = re.exec(s)![0];
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

interface Hit { rule: 'bidirectional-unicode' | 'invisible-unicode' | 'control-characters'; line: number | null; code: string }

function hitsIn(text: string, line: number | null, skipLeadingBom: boolean): Hit[] {
  const t = skipLeadingBom && text.startsWith('\ufeff') ? text.slice(1) : text;
  const out: Hit[] = [];
  if (BIDI.test(t)) out.push({ rule: 'bidirectional-unicode', line, code: codeOf(t, BIDI) });
  if (INVISIBLE.test(t)) out.push({ rule: 'invisible-unicode', line, code: codeOf(t, INVISIBLE) });
  if (CONTROL.test(t)) out.push({ rule: 'control-characters', line, code: codeOf(t, CONTROL) });
  return out;
}

/** The added lines of a unified diff with their new line numbers. */
function addedLines(patch: string): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let newNo = 0;
  for (const l of patch.split('\n')) {
    const h = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(l);
    if (h) {
      newNo = Number(h[1]);
      continue;
    }
    if (l.startsWith('+')) out.push([newNo++, l.slice(1)]);
    else if (l.startsWith(' ')) newNo++;
  }
  return out;
}

const WHAT: Record<Hit['rule'], { severity: FindingView['severity']; what: string; why: string }> = {
  'bidirectional-unicode': { severity: 'critical', what: 'bidirectional control characters', why: 'the text may run or compile differently from how it reads (Trojan Source)' },
  'invisible-unicode': { severity: 'warning', what: 'invisible characters', why: 'two names or strings that look the same may differ' },
  'control-characters': { severity: 'warning', what: 'control characters', why: 'a terminal showing this text may be made to hide or rewrite what it shows' },
};

function finding(rule: Hit['rule'], where: string, hits: Hit[], path: string | null): FindingView {
  const w = WHAT[rule];
  const n = hits.length;
  const codes = [...new Set(hits.map((h) => h.code))].slice(0, 4).join(', ');
  return {
    severity: w.severity,
    rule,
    message: `${where}: ${n === 1 ? 'one place' : `${n} places`} with ${w.what} (${codes}); ${w.why}. They are shown marked in the diff.`,
    path,
    line: hits.find((h) => h.line !== null)?.line ?? null,
  };
}

/** One finding per file (or name, or message) and kind of character, most serious first. */
export function hiddenUnicodeFindings(refs: readonly RefUpdateView[]): FindingView[] {
  const out: FindingView[] = [];
  const add = (where: string, hits: Hit[], path: string | null) => {
    for (const rule of ['bidirectional-unicode', 'invisible-unicode', 'control-characters'] as const) {
      const mine = hits.filter((h) => h.rule === rule);
      if (mine.length > 0) out.push(finding(rule, where, mine, path));
    }
  };
  for (const ref of refs) {
    add(`The ref name ${JSON.stringify(ref.ref)}`, hitsIn(ref.ref, null, false), null);
    for (const c of ref.commits) add(`The message of commit ${c.oid.slice(0, 10)}`, hitsIn(c.message, null, false), null);
    for (const f of ref.files) {
      add('The file path', hitsIn(f.path, null, false), f.path);
      if (!f.patch) continue;
      const hits = addedLines(f.patch).flatMap(([line, text]) => hitsIn(text, line, line === 1));
      add('Added lines', hits, f.path);
    }
  }
  const rank = { critical: 0, warning: 1, info: 2 } as const;
  return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
}

/** Names of files that are text in any sane repository (code, scripts, configuration, docs). */
const TEXT_NAME = /(?:^|\/)(?:Makefile|Dockerfile|Jenkinsfile|Gemfile|Rakefile|\.[\w.-]*rc)$|\.(?:sh|bash|zsh|fish|ps1|psm1|bat|cmd|py|rb|pl|pm|php|js|mjs|cjs|ts|tsx|jsx|go|rs|c|h|cc|cpp|hpp|java|kt|kts|scala|swift|cs|fs|lua|r|sql|ya?ml|json|toml|ini|cfg|conf|env|properties|gradle|xml|html?|css|md|txt|tf|hcl|nix|vue|svelte)$/i;

/**
 * A file git shows as binary (a NUL byte or invalid text in it) although its name or mode says it is
 * code, a script or configuration: one NUL byte hides a script's content from the diff, and it still runs.
 * When its content is mostly text, the analysis shows it as text (`patch` set) and the finding says so.
 */
export function opaqueFileFindings(refs: readonly RefUpdateView[]): FindingView[] {
  const out: FindingView[] = [];
  for (const ref of refs) {
    for (const f of ref.files) {
      if (!f.binary || f.status === 'deleted') continue;
      const executable = f.newMode === '100755';
      if (!executable && !TEXT_NAME.test(f.path)) continue;
      out.push({
        severity: 'warning',
        rule: 'binary-text-file',
        message: f.patch
          ? `${executable ? 'An executable file' : 'A file whose name says it is text'} is binary to git (it has a NUL byte or invalid text in it). Airlock shows it as text with those bytes marked: read them before approving.`
          : `${executable ? 'An executable file' : 'A file whose name says it is text'} is shown as binary (git found a NUL byte or invalid text in it), so its content is not in the diff: check it before approving.`,
        path: f.path,
        line: null,
      });
    }
  }
  return out;
}
