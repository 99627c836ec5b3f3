/** The messages between the Node driver (../chromium.ts), the page (main.ts) and its worker (worker.ts). */

/** What the page is asked to do, from its URL: `?task=bench` or `?task=check`, and `&quick`. */
export interface PageRequest {
  task: 'bench' | 'check';
  /** Shorter rounds (noisier figures). */
  quick: boolean;
}

export type PageMessage =
  { type: 'log'; line: string } | { type: 'result'; result: unknown } | { type: 'error'; message: string };
