/**
 * What every `glassbox` command shares when reading its command line: the usage error, --help, the model
 * options, and the checks for numbers, kernels and prompts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  selectKernels,
  type KernelPreference,
  type KernelSet,
  type ThreadPreference,
} from '../kernels/select.ts';

/** A mistake in the command line: main prints it with the usage and exits with 2. */
export class UsageError extends Error {}

/** `glassbox <command> --help`: not an error; main prints the usage to stdout. */
export class HelpRequested extends Error {}

export const modelOptions = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  prompt: { type: 'string' },
  kernels: { type: 'string' },
  threads: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const KERNEL_CHOICES: readonly KernelPreference[] = ['auto', 'wasm', 'ts', 'wasm-simd', 'wasm-relaxed-simd'];

const THREAD_CHOICES: Record<string, ThreadPreference> = { '1': 1, '2': 2, auto: 'auto' };

/**
 * --kernels: which matrix kernels to run (default auto: the fastest this runtime supports); --threads: on
 * how many threads (default 1).
 */
export function kernelsOption(value: string | undefined, threads = '1'): KernelSet {
  const preference = (value ?? 'auto') as KernelPreference;
  if (!KERNEL_CHOICES.includes(preference)) {
    throw new UsageError(`--kernels must be one of ${KERNEL_CHOICES.join(', ')}; got "${value}"`);
  }
  if (!Object.hasOwn(THREAD_CHOICES, threads)) {
    throw new UsageError(`--threads must be one of 1, 2, auto; got "${threads}"`);
  }
  return selectKernels(preference, { threads: THREAD_CHOICES[threads] });
}

/** Every command takes --help (and -h), which wins over everything else on the line. */
export function parse<O extends ParseArgsConfig['options']>(args: string[], options: O) {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequested();
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * A number option: absent → fallback; present → must parse completely to a finite number. Range checks
 * (≥ 0, whole, …) belong to each option; "Infinity", "NaN" and "1e400" (which overflows) stop here.
 */
export function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (value.trim() === '' || Number.isNaN(parsed))
    throw new UsageError(`--${name} must be a number, got "${value}"`);
  if (!Number.isFinite(parsed)) throw new UsageError(`--${name} must be a finite number, got "${value}"`);
  return parsed;
}

export function requireModel(model: string | undefined): string {
  if (!model)
    throw new UsageError(
      '--model is required (a .gguf file, a llama2.c .bin file or a Hugging Face Llama folder)',
    );
  return model;
}

/** A prompt longer than the context cannot be run; say so rather than printing a cut-off prompt. */
export function requirePromptFits(promptTokens: number, contextLength: number): void {
  if (promptTokens > contextLength) {
    throw new UsageError(
      `the prompt is ${promptTokens} tokens; this model's context holds ${contextLength}: shorten the prompt`,
    );
  }
}

/**
 * An index option (--layer, --head, --position, --neuron …): absent → fallback; present → a whole number in
 * 0…count−1, or one line saying what exists.
 */
export function indexOption(
  value: string | undefined,
  name: string,
  count: number,
  fallback: number,
  what = name + 's',
): number {
  const index = numberOption(value, name, fallback);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new UsageError(`--${name} ${value} does not exist: the model has ${what} 0…${count - 1}`);
  return index;
}

/** A count option (--top, --seed …): absent → fallback; present → a whole number from `min` to `max`. */
export function wholeNumberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const parsed = numberOption(value, name, fallback);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${value}`);
  return parsed;
}
