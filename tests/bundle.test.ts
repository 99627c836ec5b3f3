/**
 * The "which file is which" bundle (src/formats/bundle.ts): files by name and bytes → model + tokenizer, with
 * one FormatError naming the file for anything missing, malformed or mismatched. Shared by the CLI and the page.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { modelFromFiles, type NamedFile } from '../src/formats/bundle.ts';
import { FormatError } from '../src/formats/errors.ts';
import { toTokenizerJson, trainBpe } from '../src/tokenizers/bpe.ts';
import { describeShared, STORIES260K, STORIES260K_HF, TOK512 } from './shared.ts';

const file = (path: string, name = path.split('/').pop()!): NamedFile => ({
  name,
  bytes: new Uint8Array(readFileSync(path)),
});

function refusal(files: NamedFile[]): FormatError {
  try {
    modelFromFiles(files);
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return error as FormatError;
  }
  throw new Error('expected a FormatError');
}

describeShared('modelFromFiles', () => {
  it('tells a llama2.c checkpoint from its tokenizer in either order', () => {
    for (const files of [
      [file(STORIES260K), file(TOK512)],
      [file(TOK512), file(STORIES260K)],
    ]) {
      const { model, tokenizer, source } = modelFromFiles(files);
      expect(source).toBe('stories260K.bin');
      expect(model.config.vocabSize).toBe(512);
      expect(tokenizer.family).toBe('llama2c');
    }
  });

  it('reads a Hugging Face set, with a llama2.c tokenizer beside it', () => {
    const files = ['config.json', 'model.safetensors'].map((name) => file(join(STORIES260K_HF, name)));
    const { model, source } = modelFromFiles([...files, file(TOK512)]);
    expect(source).toBe('model.safetensors');
    expect(model.config.ropeLayout).toBe('half');
  });

  it('one clear error for a tokenizer that does not fit, a missing part, or a tokenizer without <|bos|>', () => {
    const trained = trainBpe('some text to learn from\n'.repeat(10), { vocabSize: 260 });
    const bytes = new TextEncoder().encode(toTokenizerJson(trained.tokenizer));
    expect(refusal([file(STORIES260K), { name: 'tokenizer.json', bytes }]).message).toBe(
      "tokenizer.json: the tokenizer has 260 tokens but the model's vocabulary has 512: they do not belong together",
    );
    expect(refusal([file(STORIES260K)]).message).toMatch(/^stories260K\.bin: no tokenizer here/);
    expect(refusal([file(TOK512, 'tok512.bin')]).message).toMatch(/not a llama2\.c|header|tok512\.bin/);
    expect(refusal([file(join(STORIES260K_HF, 'model.safetensors'))]).message).toMatch(
      /^model\.safetensors: a safetensors model needs its config\.json/,
    );
    const document = JSON.parse(toTokenizerJson(trained.tokenizer));
    // Renamed, not removed, so the ids stay 0..n−1 and only the missing <|bos|> is wrong.
    const bos = document.added_tokens.find((token: { content: string }) => token.content === '<|bos|>');
    bos.content = '<|start|>';
    document.model.vocab['<|start|>'] = document.model.vocab['<|bos|>'];
    delete document.model.vocab['<|bos|>'];
    const noBos = new TextEncoder().encode(JSON.stringify(document));
    const message = refusal([file(STORIES260K), { name: 'mine.json', bytes: noBos }]).message;
    expect(message).toBe('mine.json: this tokenizer has no <|bos|> token');
  });
});

const GGUF_FIXTURES = join(import.meta.dirname, 'fixtures', 'gguf');

it('a .gguf file alone is a whole bundle (its tokenizer is in the metadata); a tokenizer chosen with it wins', () => {
  const gguf = file(join(GGUF_FIXTURES, 'tiny-gpt2.gguf'));
  const alone = modelFromFiles([gguf]);
  expect(alone.source).toBe('tiny-gpt2.gguf');
  expect(alone.tokenizer.family).toBe('bpe');
  expect(alone.model.config.vocabSize).toBe(262);
  const trained = trainBpe('some text to learn from\n'.repeat(10), { vocabSize: 260 });
  const bytes = new TextEncoder().encode(toTokenizerJson(trained.tokenizer));
  expect(refusal([gguf, { name: 'tokenizer.json', bytes }]).message).toBe(
    "tokenizer.json: the tokenizer has 260 tokens but the model's vocabulary has 262: they do not belong together",
  );
  const broken = gguf.bytes.slice(0, 1000);
  expect(refusal([{ name: 'broken.gguf', bytes: broken }]).message).toMatch(
    /^broken\.gguf: array "tokenizer\.ggml\.tokens" says it has \d+ string items, at least \d+ bytes, but only \d+ bytes are left in the file$/,
  );
});

it('src/formats/bundle.ts runs in the browser: nothing it imports touches node:', () => {
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const source = readFileSync(path, 'utf8');
    expect(source, path).not.toMatch(/from 'node:/);
    for (const [, relative] of source.matchAll(/from '(\.[^']+)'/g)) visit(join(path, '..', relative));
  };
  visit(join(import.meta.dirname, '..', 'src', 'formats', 'bundle.ts'));
  expect(seen.size).toBeGreaterThan(5);
});
