/**
 * The training progress line: step, loss, tokens/s and time left. The driver redraws it in place on a
 * terminal and prints it as a plain line now and then when stderr is a file.
 */
export interface ProgressState {
  step: number;
  totalSteps: number;
  trainLoss: number;
  valLoss?: number;
  tokensPerSecond: number;
  /** Recent wall-clock seconds per step, for the time left. */
  secondsPerStep: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(rest).padStart(2, '0')}s`;
}

export function progressLine(state: ProgressState, width = 24): string {
  const fraction = Math.min(1, Math.max(0, state.step / state.totalSteps));
  const filled = Math.round(fraction * width);
  const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
  const val = state.valLoss === undefined ? '' : ` val ${state.valLoss.toFixed(3)}`;
  const eta = formatDuration((state.totalSteps - state.step) * state.secondsPerStep);
  const stepText = String(state.step).padStart(String(state.totalSteps).length);
  const speed = Math.round(state.tokensPerSecond).toLocaleString('en-US');
  return `step ${stepText}/${state.totalSteps} [${bar}] loss ${state.trainLoss.toFixed(3)}${val} | ${speed} tok/s | ETA ${eta}`;
}
