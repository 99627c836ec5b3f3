/**
 * The reader's state, shared by every chapter: their text, the model and the settings. It lives in the
 * URL (so a link restores what its sender saw) and in this one reactive object.
 */
import { KERNEL_CHOICES, type KernelChoice } from '$lib/worker/protocol.ts';

export const DEFAULT_PROMPT = 'In the beginning God created the heavens and the';

export const DEFAULTS = {
  prompt: DEFAULT_PROMPT,
  model: 'house',
  temperature: 0.8,
  seed: 42,
  kernels: 'auto' as KernelChoice,
  /** The token the chapters look at closely (embedding row, q/k pairs…): its position, -1 for the last. */
  token: -1,
};

export type CourseState = typeof DEFAULTS;

export const course: CourseState = $state({ ...DEFAULTS });

/** Reads the state from a URL's query (unknown or malformed values fall back to the defaults). */
export function readQuery(params: URLSearchParams): CourseState {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const raw = params.get(name);
    const value = raw === null ? NaN : Number(raw);
    return Number.isFinite(value) && value >= min && value <= max ? value : fallback;
  };
  return {
    prompt: params.get('prompt') ?? DEFAULTS.prompt,
    // 'local': a model from the sender's own disk, which the link cannot carry (the page says so).
    model: params.get('model') === 'local' ? 'local' : DEFAULTS.model,
    temperature: number('temperature', DEFAULTS.temperature, 0, 2),
    seed: Math.round(number('seed', DEFAULTS.seed, 1, 2 ** 31)),
    kernels: KERNEL_CHOICES.find((choice) => choice === params.get('kernels')) ?? DEFAULTS.kernels,
    token: Math.round(number('token', DEFAULTS.token, -1, 1e6)),
  };
}

/** The query that restores `state` (the defaults are left out, except the prompt, to keep links short). */
export function toQuery(state: CourseState): string {
  const params = new URLSearchParams();
  params.set('prompt', state.prompt);
  if (state.model !== DEFAULTS.model) params.set('model', state.model);
  if (state.temperature !== DEFAULTS.temperature) params.set('temperature', String(state.temperature));
  if (state.seed !== DEFAULTS.seed) params.set('seed', String(state.seed));
  if (state.kernels !== DEFAULTS.kernels) params.set('kernels', state.kernels);
  if (state.token !== DEFAULTS.token) params.set('token', String(state.token));
  return params.toString();
}
