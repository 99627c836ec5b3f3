/**
 * Whether the reader asked for reduced motion (the system setting), followed live. Figures that animate
 * (Play buttons) hide them and stop while it is on: every step stays reachable by the keyboard controls.
 */
export const motion = $state({ reduced: false });

if (typeof window !== 'undefined') {
  const query = matchMedia('(prefers-reduced-motion: reduce)');
  motion.reduced = query.matches;
  query.addEventListener('change', () => (motion.reduced = query.matches));
}
