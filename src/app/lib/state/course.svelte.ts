/**
 * The reader's state, shared by every chapter: their text, the model and the settings. It lives in this
 * one reactive object, in the URL (so a link restores what its sender saw) and, for the text, in this tab's
 * sessionStorage (so a reload keeps it even when the link could not).
 *
 * A short text travels in the query (`?prompt=…`). A long one would make links that servers refuse (HTTP
 * 431 above ~16 KB of headers), so it travels in the fragment instead, compressed: `#text=…`, the part of a
 * link a browser never sends to the server. Text is measured in code points (what the prompt bar counts),
 * and is at most PROMPT_LIMIT of them.
 */
import { KERNEL_CHOICES, type KernelChoice } from '$lib/worker/protocol.ts';
import { houseCheckpointStepOf, trainedRunOf } from '$lib/train/model-id.ts';

export const DEFAULT_PROMPT = 'In the beginning God created the heavens and the';

/** The most code points the text box holds. */
export const PROMPT_LIMIT = 4000;
/** The longest `prompt=…` (URL-encoded characters) kept in the query; longer texts go in the fragment. */
export const QUERY_PROMPT_LIMIT = 2000;
/** The longest fragment a link may carry; a text whose compressed form is longer is not put in links. */
export const FRAGMENT_LIMIT = 60_000;

export const DEFAULTS = {
  prompt: DEFAULT_PROMPT,
  model: 'house',
  temperature: 0.8,
  seed: 42,
  /** The sampler's filters (chapter 11), off by the engine's rules at 0 (top-p also at 1); top-p 0.9 is
   * llama2.c's default. */
  topK: 0,
  topP: 0.9,
  minP: 0,
  kernels: 'auto' as KernelChoice,
  /** The token the chapters look at closely (embedding row, q/k pairs…): its position, -1 for the last. */
  token: -1,
};

export type CourseState = typeof DEFAULTS;

export const course: CourseState = $state({ ...DEFAULTS });

/** News about the reader's text that the prompt bar shows until the text changes again. */
export const textNews: { message: string | undefined } = $state({ message: undefined });

/**
 * How links from this page carry the text: in the query, in the fragment (compressed), or not at all (too
 * long even compressed; the prompt bar says so).
 */
export const sharing: { mode: 'query' | 'fragment' | 'none' } = $state({ mode: 'query' });

/**
 * The address bar follows the text once typing pauses (the layout waits a moment); `flush` brings it up to
 * date at once, for a copy of the link made before the pause is over.
 */
export const addressBar: { flush: () => Promise<void> } = { flush: () => Promise.resolve() };

/** The number of code points in `text` (an emoji with a skin tone is 2, "é" written as e + accent is 2). */
export function codePointCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** `text` cut to its first `limit` code points (never inside a surrogate pair), and how long it was. */
export function cutToLimit(text: string, limit = PROMPT_LIMIT): { text: string; length: number } {
  const length = codePointCount(text);
  if (length <= limit) return { text, length };
  return { text: Array.from(text).slice(0, limit).join(''), length };
}

/** The sentence that says a text of `length` code points was cut to the limit, and where it came from. */
export function cutMessage(length: number, source: 'paste' | 'typed' | 'link' | 'saved'): string {
  const what = {
    paste: 'What you pasted',
    typed: 'Your typing',
    link: 'The link’s text',
    saved: 'The saved text',
  }[source];
  return `${what} made a text of ${length.toLocaleString('en')} characters; the box holds ${PROMPT_LIMIT.toLocaleString('en')}, so it keeps the first ${PROMPT_LIMIT.toLocaleString('en')}.`;
}

/**
 * Reads the state from a URL's query (unknown or malformed values fall back to the defaults). The prompt is
 * undefined when the query has none (the caller then looks in the fragment and in storage).
 */
export function readQuery(params: URLSearchParams): Omit<CourseState, 'prompt'> & { prompt?: string } {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const raw = params.get(name);
    const value = raw === null ? NaN : Number(raw);
    return Number.isFinite(value) && value >= min && value <= max ? value : fallback;
  };
  return {
    prompt: params.get('prompt') ?? undefined,
    // 'local': a model from the sender's own disk, which the link cannot carry (the page says so).
    // 'trained:<run>': a model trained in chapter 14, which lives only in the browser that trained it.
    // 'house@<step>': the house model at a checkpoint of its training (the time-machine, chapter 14).
    model:
      params.get('model') === 'local'
        ? 'local'
        : trainedRunOf(params.get('model') ?? '') !== undefined ||
            houseCheckpointStepOf(params.get('model') ?? '') !== undefined
          ? params.get('model')!
          : DEFAULTS.model,
    temperature: number('temperature', DEFAULTS.temperature, 0, 2),
    seed: Math.round(number('seed', DEFAULTS.seed, 1, 2 ** 31)),
    topK: Math.round(number('top-k', DEFAULTS.topK, 0, 1e6)),
    topP: number('top-p', DEFAULTS.topP, 0, 1),
    minP: number('min-p', DEFAULTS.minP, 0, 1),
    kernels: KERNEL_CHOICES.find((choice) => choice === params.get('kernels')) ?? DEFAULTS.kernels,
    token: Math.round(number('token', DEFAULTS.token, -1, 1e6)),
  };
}

/** Whether `prompt` is short enough to travel in a link's query. */
export function fitsInQuery(prompt: string): boolean {
  return encodeURIComponent(prompt).length <= QUERY_PROMPT_LIMIT;
}

/**
 * The query that restores `state` (the defaults are left out, except the prompt, to keep links short). A
 * prompt too long for a query is left out too: it goes in the fragment (see fragmentFor).
 */
export function toQuery(state: CourseState): string {
  const params = new URLSearchParams();
  if (fitsInQuery(state.prompt)) params.set('prompt', state.prompt);
  if (state.model !== DEFAULTS.model) params.set('model', state.model);
  if (state.temperature !== DEFAULTS.temperature) params.set('temperature', String(state.temperature));
  if (state.seed !== DEFAULTS.seed) params.set('seed', String(state.seed));
  if (state.topK !== DEFAULTS.topK) params.set('top-k', String(state.topK));
  if (state.topP !== DEFAULTS.topP) params.set('top-p', String(state.topP));
  if (state.minP !== DEFAULTS.minP) params.set('min-p', String(state.minP));
  if (state.kernels !== DEFAULTS.kernels) params.set('kernels', state.kernels);
  if (state.token !== DEFAULTS.token) params.set('token', String(state.token));
  return params.toString();
}

const FRAGMENT_KEY = 'text=';

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array {
  const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function through(bytes: Uint8Array, stream: CompressionStream | DecompressionStream) {
  const piped = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

/**
 * The fragment (without '#') that carries a long `prompt`: its UTF-8, deflated, in base64url. Undefined
 * when the prompt fits in the query, or when even compressed it is longer than FRAGMENT_LIMIT.
 */
export async function fragmentFor(prompt: string): Promise<string | undefined> {
  if (fitsInQuery(prompt)) return undefined;
  const packed = base64url(
    await through(new TextEncoder().encode(prompt), new CompressionStream('deflate-raw')),
  );
  const fragment = FRAGMENT_KEY + packed;
  return fragment.length <= FRAGMENT_LIMIT ? fragment : undefined;
}

/** The text a fragment made by fragmentFor carries, or undefined (no text, or not one of ours). */
export async function readFragment(hash: string): Promise<string | undefined> {
  const fragment = hash.replace(/^#/, '');
  if (!fragment.startsWith(FRAGMENT_KEY)) return undefined;
  try {
    const bytes = await through(
      fromBase64url(fragment.slice(FRAGMENT_KEY.length)),
      new DecompressionStream('deflate-raw'),
    );
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Whether a location's fragment is one that carries text (rather than an anchor on the page). */
export function isTextFragment(hash: string): boolean {
  return hash.replace(/^#/, '').startsWith(FRAGMENT_KEY);
}

const STORAGE_KEY = 'glassbox.prompt';

/** The text this tab last had (it survives a reload), if storage allows. */
export function savedPrompt(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function savePrompt(prompt: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, prompt);
  } catch {
    // Storage full or unavailable: the link still carries the text when it fits.
  }
}
