/** `glassbox generate --draft`: speculative decoding from the command line. */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.ts';
import { haveShared, STORIES260K } from './shared.ts';

const HOUSE = 'models/house';
const greedy = [
  'generate',
  '--model',
  HOUSE,
  '--prompt',
  'In the beginning',
  '--temperature',
  '0',
  '--steps',
  '48',
];

describe('glassbox generate --draft', () => {
  it('prints exactly the text of the model alone (greedy), and reports how many guesses were accepted', async () => {
    const alone = await runCli(greedy);
    // The model as its own draft: every guess is right, so every round gains its k tokens.
    const speculative = await runCli([...greedy, '--draft', HOUSE, '--draft-tokens', '3']);
    expect(speculative.code).toBe(0);
    expect(speculative.stdout.toString()).toBe(alone.stdout.toString());
    const match =
      /accepted (\d+) of (\d+) \(100\.0%\), 3 per round; (\d+) target passes for (\d+) tokens/.exec(
        speculative.stderr,
      );
    expect(match, speculative.stderr).not.toBeNull();
    const [, accepted, proposed, passes, tokens] = match!.map(Number);
    expect(accepted).toBe(proposed);
    expect(passes).toBe(Math.ceil(tokens / 4));
  });

  it('--draft-tokens without --draft, or out of range, is a usage error', async () => {
    const lonely = await runCli([...greedy, '--draft-tokens', '3']);
    expect(lonely.code).toBe(2);
    expect(lonely.stderr).toMatch(/^glassbox: --draft-tokens needs --draft/);
    const zero = await runCli([...greedy, '--draft', HOUSE, '--draft-tokens', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/^glassbox: --draft-tokens must be a whole number from 1 to 32, got 0/);
  });

  it.skipIf(!haveShared)('a draft with another vocabulary is refused in one line', async () => {
    const result = await runCli([...greedy, '--draft', STORIES260K]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/has a vocabulary of 512 tokens, the model 4096: the draft must share/);
  });
});

describe('the shipped draft for the house model', () => {
  it('shares the house tokenizer, and speculative greedy text is the house model’s own', async () => {
    const alone = await runCli(greedy);
    const speculative = await runCli([...greedy, '--draft', 'models/house-draft']);
    expect(speculative.code).toBe(0);
    expect(speculative.stdout.toString()).toBe(alone.stdout.toString());
    const [, accepted, proposed] = /accepted (\d+) of (\d+)/.exec(speculative.stderr)!.map(Number);
    // A real draft: right often enough to matter, not always.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(proposed);
  });
});
