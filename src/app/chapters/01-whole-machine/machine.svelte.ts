/**
 * Chapter 1's figures share one answer: the summary of the reader's text (top tokens, residual stream),
 * asked once per reading and handed to each figure as data. Call `machineSummary()` while the page starts.
 */
import { whileCurrent } from '$lib/figure/latest.ts';
import { chapterWorker, engine, publishFigure } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, MachineSummary } from './worker.ts';

export function machineSummary(): { current: MachineSummary | undefined } {
  const machine = $state<{ current: MachineSummary | undefined }>({ current: undefined });
  $effect(() => {
    const tokens = engine.reading?.tokens;
    if (!tokens) return;
    return whileCurrent(
      chapterWorker<typeof handlers>(chapter.slug).summary($state.snapshot(tokens)),
      (summary) => {
        machine.current = summary;
        publishFigure(chapter.slug, { tokens: summary.tokens, top: summary.top });
      },
      (message) => (engine.error = message),
    );
  });
  return machine;
}
