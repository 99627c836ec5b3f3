/**
 * `glassbox inspect <view> --model M --prompt TEXT --json`: the numbers a chapter's figure shows, as JSON,
 * computed by the same functions (src/analysis/) the page's worker calls, so the CLI and the page agree.
 *
 * Each view is one file in src/cli/inspect/ and one entry in its views.ts table: its own options, their
 * usage lines, and `run`, which turns the loaded model and the prompt's tokens into a JSON-ready object.
 */
import type { ParseArgsConfig } from 'node:util';
import type { Model } from '../engine/model.ts';
import type { KernelSet } from '../kernels/select.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import {
  HelpRequested,
  kernelsOption,
  modelOptions,
  parse,
  requireModel,
  requirePromptFits,
  UsageError,
} from './args.ts';
import { INSPECT_VIEWS } from './inspect/views.ts';
import { loadModelAndTokenizer } from './load.ts';
import type { CliIO } from './main.ts';

/** What a view is given: the loaded model, the prompt as tokens (BOS first), and its own option values. */
export interface InspectInput {
  model: Model;
  tokenizer: Tokenizer;
  tokens: number[];
  kernels: KernelSet;
  options: Record<string, string | boolean | undefined>;
}

export interface InspectView {
  /** One line: what the view prints. */
  summary: string;
  /** The options the view adds to the model options (parseArgs form). */
  options: ParseArgsConfig['options'];
  /** Usage lines for those options, each "  --name VALUE   what it does". */
  usage: string[];
  /** The view's JSON (without the tokens and pieces, which inspect adds); throws UsageError for bad options. */
  run(input: InspectInput): Record<string, unknown>;
}

/** The usage section of the inspect views, for the CLI's help. */
export function inspectUsage(): string {
  const views = Object.entries(INSPECT_VIEWS as Record<string, InspectView>);
  if (views.length === 0) return '';
  const lines = ['inspect views (each needs --model, --prompt and --json):'];
  for (const [name, view] of views) {
    lines.push(`  ${name.padEnd(10)} ${view.summary}`);
    lines.push(...view.usage.map((line) => `  ${line}`));
  }
  return lines.join('\n') + '\n';
}

export async function inspectCommand(args: string[], io: CliIO): Promise<number> {
  const views = INSPECT_VIEWS as Record<string, InspectView>;
  const names = Object.keys(views).join(', ');
  const [name, ...rest] = args;
  if (name === '--help' || name === '-h') throw new HelpRequested();
  if (name === undefined || name.startsWith('-'))
    throw new UsageError(`inspect needs a view first: one of ${names}`);
  if (!Object.hasOwn(views, name))
    throw new UsageError(`unknown inspect view "${name}": choose one of ${names}`);
  const view = views[name];

  const values = parse(rest, { ...modelOptions, json: { type: 'boolean' }, ...view.options });
  if (!values.json) throw new UsageError('inspect prints JSON only for now: add --json');
  if (typeof values.prompt !== 'string') throw new UsageError('--prompt is required for inspect');
  const kernels = kernelsOption(values.kernels as string | undefined, values.threads as string | undefined);
  const { model, tokenizer } = await loadModelAndTokenizer(
    requireModel(values.model as string | undefined),
    values.tokenizer as string | undefined,
  );
  const tokens = tokenizer.encode(values.prompt, { bos: true, eos: false });
  requirePromptFits(tokens.length, model.config.seqLen);

  const result = view.run({ model, tokenizer, tokens, kernels, options: values });
  const json = {
    view: name,
    tokens,
    pieces: tokens.map((id) => tokenizer.pieceLabel(id)),
    ...result,
  };
  io.stdout.write(JSON.stringify(json) + '\n');
  return 0;
}
