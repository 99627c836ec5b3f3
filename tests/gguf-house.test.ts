/**
 * The house model (models/house, Hugging Face layout with our byte-level BPE tokenizer) through GGUF: the
 * tokenizer goes into the metadata as tokenizer.ggml.model "gpt2" with tokenizer.ggml.pre "llama-bpe" (our
 * pre-tokenizer is Llama 3's), q/k are permuted to GGUF's interleaved RoPE order, and the file computes the
 * same logits and encodes the same ids.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { parseGgufLlama, toGguf } from '../src/formats/gguf-llama.ts';
import { loadModel } from '../src/formats/node.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { encodePiece, fromTokenizerJson, pieceLabel } from '../src/tokenizers/bpe.ts';
import { pretokenize } from '../src/tokenizers/pretokenize.ts';
import { maxAbsDiff } from './helpers.ts';

const HOUSE = join(import.meta.dirname, '..', 'models', 'house');
const kernels = selectKernels('ts');

describe('the house model as GGUF', async () => {
  const model = await loadModel(HOUSE);
  const bpe = fromTokenizerJson(readFileSync(join(HOUSE, 'tokenizer.json'), 'utf8'));
  const text = 'In the beginning God created the heaven and the earth. «Naïve» café, 12345 — 🙂!';

  it('f32: the same logits as the safetensors model (q/k permuted to interleaved and back), the same ids', () => {
    const written = parseGgufLlama(
      toGguf(model, { kind: 'gpt2', tokenizer: bpe }, 'f32').bytes,
      'house.gguf',
    );
    // GGUF stores the epsilon as float32, as llama.cpp reads it.
    const normEps = Math.fround(model.config.normEps);
    expect(written.model.config).toEqual({ ...model.config, normEps, ropeLayout: 'interleaved' });
    expect(written.gguf.metadata.get('tokenizer.ggml.pre')?.value).toBe('llama-bpe');
    const ids = written.tokenizer.encode(text, { bos: true, eos: false });
    expect(ids).toEqual(fromTokenizerJsonIds(text));
    const ours = forward(written.model, ids, new KVCache(written.model.config), { kernels }).logits;
    const reference = forward(model, ids, new KVCache(model.config), { kernels }).logits;
    expect(maxAbsDiff(ours, reference)).toBeLessThan(1e-4);
  });

  it('llama.cpp looks up a whole pre-token first for llama-bpe (ignore_merges); merging gives those tokens too', () => {
    // So "llama-bpe" is exact for this vocabulary: every token that is a whole pre-token by itself is also what
    // the merges build from its bytes.
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const differ: string[] = [];
    bpe.tokenBytes.forEach((bytes, id) => {
      if (bpe.specialTokens.some((token) => token.id === id)) return;
      let piece: string;
      try {
        piece = decoder.decode(bytes);
      } catch {
        return; // not whole UTF-8 characters: never a pre-token by itself
      }
      const pieces = pretokenize(piece, bpe.pattern);
      if (pieces.length !== 1) return;
      const merged = encodePiece(bpe, piece);
      if (merged.length !== 1 || merged[0] !== id) differ.push(pieceLabel(bpe, id));
    });
    expect(differ).toEqual([]);
  });

  function fromTokenizerJsonIds(input: string): number[] {
    return [bpe.bosId!, ...pretokenize(input, bpe.pattern).flatMap((piece) => [...encodePiece(bpe, piece)])];
  }
});
