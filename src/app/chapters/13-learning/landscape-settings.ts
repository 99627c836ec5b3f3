/**
 * The loss landscape's settings, shared by the script that computes the shipped grid
 * (scripts/learning-landscape.ts), the page's worker and the tests.
 */
export const LANDSCAPE_SETTINGS = {
  /** Predictions in the held-out batch (one sequence of this many inputs, each next token its target). */
  positions: 64,
  /** The grid spans −range … range along both directions, in `size` points each. */
  range: 1,
  size: 31,
  /** An optimiser beyond ±bound has left the plane's picture: it has diverged. */
  bound: 3,
  /** The race the page shows first (the reader's own settings are computed live). */
  race: { start: [-0.7, 0.65] as [number, number], learningRate: 0.03 },
  raceSteps: 30,
};

/** An optimiser has reached the valley floor when its loss is within this many nats of the grid's lowest. */
export const VALLEY_MARGIN = 0.05;
