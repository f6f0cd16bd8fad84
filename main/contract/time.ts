// What a "since"/"until" bound may be, for the CLI's flags and the API's queries alike.

/**
 * `text` as an ISO time (a date alone is UTC midnight), or null when it is not one. Only YYYY-MM-DD,
 * optionally with an ISO time: a day that does not exist (2026-02-30) is refused, not rolled over, and
 * years past 9999 (which would sort before every stored time) cannot be written.
 */
export function parseTimeBound(text: string): string | null {
  const t = text.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i.exec(t);
  if (!m) return null;
  const [y, mo, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const check = new Date(Date.UTC(y, mo - 1, day));
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== day) return null;
  const d = new Date(t.length === 10 ? `${t}T00:00:00Z` : t);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
