import { heldOutcome as recordedOutcome, type ExchangeView, type ReviewState } from '../../../main/contract';

/**
 * How a held push's review ended: the review's state when the console has it (it follows the review
 * live), else what the exchange's record says (`heldOutcome`, shared with the CLI). null when unknown.
 */
export function heldOutcome(e: Pick<ExchangeView, 'reviewId' | 'error' | 'requestBytes'>, state: ReviewState | undefined): ReviewState | null {
  if (!e.reviewId) return null;
  return state ?? recordedOutcome(e);
}
