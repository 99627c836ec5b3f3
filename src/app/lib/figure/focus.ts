/**
 * The token the chapters look at closely (the focus token) is `course.token` in the URL: a position in the
 * reader's text, or −1 for "the last token", which stays the last as the text grows. Every figure turns it
 * into a position, and a choice back into a value, with these two functions.
 */

/** The focus position in a text of `count` tokens: −1 (or past the end) is the last; −1 for no tokens. */
export function focusPosition(token: number, count: number): number {
  if (count <= 0) return -1;
  return token < 0 || token >= count ? count - 1 : Math.floor(token);
}

/** The value of `course.token` that chooses `position` in a text of `count` tokens (−1 for the last). */
export function focusValue(position: number, count: number): number {
  const clamped = Math.max(0, Math.min(Math.floor(position), count - 1));
  return clamped === count - 1 ? -1 : clamped;
}
