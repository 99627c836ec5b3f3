/**
 * The views of `glassbox inspect`, one file each in this folder: add a view by writing its file and one
 * entry here (the key is the view's name on the command line).
 */
import type { InspectView } from '../inspect.ts';
import { ablateView } from './ablate.ts';
import { headsView } from './heads.ts';
import { learningView } from './learning.ts';
import { lensView } from './lens.ts';
import { neuronsView } from './neurons.ts';

export const INSPECT_VIEWS = {
  heads: headsView,
  ablate: ablateView,
  lens: lensView,
  neurons: neuronsView,
  learning: learningView,
} satisfies Record<string, InspectView>;
