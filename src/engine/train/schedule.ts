/**
 * The learning-rate schedule: a linear warmup to maxLr (large steps on random weights would diverge, and
 * AdamW's second moments need a few steps to become meaningful), then a cosine decay to minLr, which lets
 * the weights settle at the end of training.
 */
export interface ScheduleConfig {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  /** The step at which the cosine reaches minLr; later steps stay at minLr. */
  totalSteps: number;
}

/**
 * The learning rate for step `step` (counting from 0):
 *   step < warmupSteps:             maxLr·(step + 1)/warmupSteps   (reaches maxLr on the last warmup step)
 *   warmupSteps ≤ step ≤ totalSteps: minLr + (maxLr − minLr)·(1 + cos(π·progress))/2,
 *                                   progress = (step − warmupSteps)/(totalSteps − warmupSteps)
 *   step > totalSteps:              minLr
 */
export function learningRateAt(step: number, schedule: ScheduleConfig): number {
  const { maxLr, minLr, warmupSteps, totalSteps } = schedule;
  if (step < warmupSteps) return (maxLr * (step + 1)) / warmupSteps;
  if (step >= totalSteps) return minLr;
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
  return minLr + ((maxLr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
}

/**
 * The steps at which a run's learning rate rose again after it had started to fall: where a finished run was
 * resumed with a longer schedule (`glassbox train --resume --steps N` stretches the cosine to step N, so the
 * rate jumps back up the curve). The warm-up's rise comes before any fall and is not counted.
 */
export function warmRestarts(log: readonly { step: number; lr: number }[]): number[] {
  const restarts: number[] = [];
  let falling = false;
  for (let i = 1; i < log.length; i++) {
    const before = log[i - 1].lr;
    const now = log[i].lr;
    if (now < before) falling = true;
    else if (falling && now > before * 1.001) {
      restarts.push(log[i].step);
      falling = false;
    }
  }
  return restarts;
}
