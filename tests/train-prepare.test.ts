import { describe, expect, it } from 'vitest';
import { DEFAULT_TRAIN_SETTINGS } from '../src/cli/train/run.ts';
import { runParameterCount, runSettingsProblem } from '../src/engine/train/prepare.ts';
import { parameterCount } from '../src/engine/model.ts';
import { randomModel } from '../src/engine/init.ts';
import { modelConfig } from '../src/engine/train/prepare.ts';

describe('a run’s settings, checked before anything starts', () => {
  it('accepts the house configuration', () => {
    expect(runSettingsProblem(DEFAULT_TRAIN_SETTINGS)).toBeUndefined();
  });

  it('names the setting that cannot work, in one sentence', () => {
    const bad = (change: Partial<typeof DEFAULT_TRAIN_SETTINGS>) =>
      runSettingsProblem({ ...DEFAULT_TRAIN_SETTINGS, ...change });
    expect(bad({ dim: 100, heads: 3 })).toMatch(/width 100 cannot be shared by 3 heads/);
    expect(bad({ dim: 12, heads: 4 })).toMatch(/head would be 3 wide.*even/);
    expect(bad({ heads: 4, kvHeads: 3 })).toMatch(/4 query heads cannot share 3 key\/value heads/);
    expect(bad({ shards: 32, batchSize: 16 })).toMatch(/32 shards cannot cut a batch of 16/);
    expect(bad({ layers: 0 })).toMatch(/layers must be a whole number ≥ 1, got 0/);
    expect(bad({ learningRate: Number.NaN })).toMatch(/learningRate must be a number ≥ 0/);
    expect(bad({ vocabSize: 200 })).toMatch(/at least .* \(258\)/);
  });

  it('counts the parameters the model it describes has', () => {
    const settings = { ...DEFAULT_TRAIN_SETTINGS, dim: 32, heads: 4, kvHeads: 2, hidden: 80, layers: 2 };
    const model = randomModel(modelConfig(settings, 300), 1);
    expect(runParameterCount({ ...settings, vocabSize: 300 })).toBe(parameterCount(model));
  });
});
