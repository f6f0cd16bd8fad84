import type { ExchangeView, ReviewState } from '../../../main/contract';

/**
 * How a held push's review ended: the review's state when the console has it (it follows the review
 * live), else what the exchange's record says (a push not forwarded has `review #N denied …` as its
 * error; one forwarded without trouble has no error and the held bytes counted). null when unknown.
 */
export function heldOutcome(e: Pick<ExchangeView, 'reviewId' | 'error' | 'requestBytes'>, state: ReviewState | undefined): ReviewState | null {
  if (!e.reviewId) return null;
  if (state) return state;
  const m = /^review #\S+ (approved|denied|expired|interrupted)\b/.exec(e.error ?? '');
  if (m) return m[1] as ReviewState;
  return !e.error && e.requestBytes > 0 ? 'approved' : null;
}
