/**
 * llama2.c's int8 `runq` on stories260K-q8.bin: `glassbox generate` on the same file prints exactly what runq
 * printed (../shared/oracle/stories260K/runq/, runq's stdout for the commands its README names). Matching it
 * byte for byte needs runq's own arithmetic: activations quantized to int8 per group before every product,
 * integer sums per group, float32 scaling in runq.c's order (src/engine/quant-matmul.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.ts';
import { ORACLE, SHARED, TOK512 } from './shared.ts';

const STORIES260K_Q8 = join(SHARED, 'models', 'stories260K', 'stories260K-q8.bin');
const RUNQ_ORACLE = join(ORACLE, 'runq');
const available = existsSync(STORIES260K_Q8) && existsSync(TOK512) && existsSync(RUNQ_ORACLE);
if (!available) {
  console.warn(`skipping the runq oracle tests: ${STORIES260K_Q8} or ${RUNQ_ORACLE} is absent`);
}

(available ? describe : describe.skip)('stories260K-q8.bin against llama2.c runq', () => {
  const runq = (name: string) => readFileSync(join(RUNQ_ORACLE, name));
  for (const kernels of ['ts', 'wasm']) {
    const generate = (...args: string[]) =>
      runCli(['generate', '--model', STORIES260K_Q8, '--tokenizer', TOK512, '--kernels', kernels, ...args]);

    it(`[${kernels}] runq -t 0 -n 256 -i "Once upon a time": the same stdout, byte for byte`, async () => {
      const result = await generate('--temperature', '0', '--steps', '256', '--prompt', 'Once upon a time');
      expect(result.stderr).toMatch(/^achieved tok\/s/);
      expect(result.code).toBe(0);
      expect(result.stdout.toString('utf8')).toBe(
        runq('greedy_prompt_once_upon_a_time_n256.txt').toString('utf8'),
      );
    });

    it(`[${kernels}] runq -t 1.0 -p 0.9 -s 133742 -n 256: the same stdout, byte for byte`, async () => {
      const result = await generate(
        '--temperature',
        '1.0',
        '--top-p',
        '0.9',
        '--seed',
        '133742',
        '--steps',
        '256',
      );
      expect(result.code).toBe(0);
      expect(result.stdout.toString('utf8')).toBe(runq('sample_t1_p0.9_s133742_n256.txt').toString('utf8'));
    });
  }
});
