#!/usr/bin/env python3
"""GGUF fixtures for tests/gguf.test.ts, made and checked by llama.cpp's own Python package `gguf`.

    pip install gguf          (numpy too)
    npm run build             (step 2 runs the glassbox command from dist/)
    python3 scripts/gguf-fixtures.py

Step 1 writes, with the package's writer and quantizers, into tests/fixtures/gguf/:
  types.gguf + types.json     one small tensor per type glassbox reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
                              Q6_K) and, for each, the package's dequantized values (and the float32 values it
                              quantized, so the tests can compare glassbox's quantizer byte for byte)
  tiny-llama.gguf + .json     a 1-layer Llama with random weights in mixed types and a SentencePiece ("llama")
                              tokenizer; the json holds the package's dequantized tensors as SHA-256 + values
  tiny-gpt2.gguf + .json      the same shape with a byte-level BPE ("gpt2") tokenizer and a tied classifier

Step 2 runs `glassbox quantize` on tiny-gpt2.gguf for every type glassbox writes (glassbox-<type>.gguf), and
step 3 reads those files back with the package, recording what it sees in glassbox-written.json: the check that
a file glassbox writes is a GGUF file llama.cpp's reader understands, kept so `npm test` needs no Python.

Everything is seeded: running it again gives the same bytes.
"""
import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf"
WRITE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"]


def b64(values: np.ndarray) -> str:
    """float32 values as base64 of their little-endian bytes: exact, and a third of the size of decimal text."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode()


def summary(values: np.ndarray) -> dict:
    flat = np.ascontiguousarray(values, dtype="<f4").ravel()
    return {"sha256": hashlib.sha256(flat.tobytes()).hexdigest(), "first": [float(v) for v in flat[:4]]}


def dequantize(data: np.ndarray, qtype: T) -> np.ndarray:
    return gguf.quants.dequantize(data, qtype).astype(np.float32)


# ------------------------------------------------------------------------------------------ types.gguf

def source_values(rng: np.random.Generator, qtype: T, rows: int, cols: int) -> np.ndarray:
    """Random normal values, plus rows that test rounding: ties, a zero block, extremes of the type."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    if qtype == T.Q8_0:  # d = 127/127 = 1: q = round(x) exactly at the halves, away from zero
        x[1, :32] = np.array([127, 0.5, 1.5, -2.5, -0.5, 126.5, -126.5] + [0] * 25, dtype=np.float32)
        x[1, 32:64] = 0
    if qtype == T.Q4_0:  # extreme −8 → d = 1: q = trunc(x + 8.5)
        x[1, :32] = np.array([-8, 0.5, 1.5, -2.5, -0.5, 7.5, -7.5] + [0] * 25, dtype=np.float32)
        x[1, 32:64] = 0
    if qtype == T.Q4_1:
        x[1, :32] = np.linspace(-1, 2, 32, dtype=np.float32)
        x[1, 32:64] = 3  # min = max: d = 0
    if qtype == T.F16:
        x[1, :10] = [65504, 65520, 2**-24, 3 * 2**-25, -0.0, 1e-8, 1 + 2**-11, 1 + 3 * 2**-11, -65519, 2**-14]
    if qtype == T.BF16:
        bits = np.array([0x3F808000, 0x3F818000, 0x3F807FFF, 0x7F7FFFFF, 0x00000001, 0x80000000], dtype=np.uint32)
        x[1, : len(bits)] = bits.view(np.float32)
    return x


def random_k_blocks(rng: np.random.Generator, qtype: T, rows: int, cols: int) -> np.ndarray:
    """The package has no K-quant quantizer: random blocks whose float16 fields are set to sensible scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(rows * cols // block_size, type_size), dtype=np.uint8)
    halves = (rng.random(blocks.shape[0] * 2) * 0.05 + 0.001).astype(np.float16).view(np.uint8)
    halves = halves.reshape(blocks.shape[0], 4)
    if qtype == T.Q4_K:
        blocks[:, 0:4] = halves  # d, dmin
    else:  # Q6_K: d is the last field
        blocks[:, 208:210] = halves[:, 0:2]
    return blocks.reshape(rows, cols // block_size * type_size)


def write_types(rng: np.random.Generator) -> None:
    writer = gguf.GGUFWriter(str(OUT / "types.gguf"), "llama")
    record = {}
    for qtype, (rows, cols) in [
        (T.F32, (2, 64)), (T.F16, (2, 64)), (T.BF16, (2, 64)), (T.Q8_0, (3, 64)),
        (T.Q4_0, (3, 64)), (T.Q4_1, (3, 64)), (T.Q4_K, (2, 512)), (T.Q6_K, (2, 512)),
    ]:
        name = qtype.name.lower()
        entry = {"type": qtype.name, "shape": [rows, cols]}
        if qtype in (T.Q4_K, T.Q6_K):
            data = random_k_blocks(rng, qtype, rows, cols)
        else:
            source = source_values(rng, qtype, rows, cols)
            with np.errstate(over="ignore"):  # 65520 becomes float16 infinity, on purpose
                data = gguf.quants.quantize(source, qtype)
            entry["source"] = b64(source)
            entry["quantized"] = base64.b64encode(np.ascontiguousarray(data).view(np.uint8).tobytes()).decode()
        entry["dequantized"] = b64(dequantize(data, qtype).reshape(rows, cols))
        writer.add_tensor(name, data, raw_dtype=qtype)
        record[name] = entry
    finish(writer)
    write_json("types.json", {"source": "gguf " + gguf_version(), "tensors": record})


# ------------------------------------------------------------------------------------- the tiny models

DIM, HIDDEN, HEADS, KV_HEADS, CONTEXT = 32, 48, 2, 1, 64


def sentencepiece_vocab() -> tuple[list[str], list[float], list[int]]:
    """<unk>, <s>, </s>, the 256 byte tokens, then pieces with "▁" for a space, scored like SentencePiece."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    words = ["▁", "e", "t", "h", "o", "n", "c", "▁t", "he", "▁the", "▁o", "on", "▁on", "ce", "▁once", "▁c"]
    tokens += words
    types += [1] * len(words)
    scores = [0.0] * 259 + [-float(i) for i in range(len(words))]
    return tokens, scores, types


def byte_level_vocab() -> tuple[list[str], list[int], list[str]]:
    """GPT-2's printable alphabet for the 256 bytes, two control tokens, then merged tokens and their merges."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    alphabet, extra = {}, 256
    for b in range(256):
        if b in printable:
            alphabet[b] = chr(b)
        else:
            alphabet[b] = chr(extra)
            extra += 1
    tokens = [alphabet[b] for b in range(256)] + ["<|bos|>", "<|eos|>"]
    types = [1] * 256 + [3, 3]
    merges = ["Ġ t", "h e", "Ġt he", "o n"]
    for merge in merges:
        tokens.append(merge.replace(" ", ""))
        types.append(1)
    return tokens, types, merges


def add_llama_config(writer: gguf.GGUFWriter, vocab: int) -> None:
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(1)
    writer.add_feed_forward_length(HIDDEN)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(vocab)


def random_weights(rng: np.random.Generator, vocab: int, tied: bool) -> dict[str, np.ndarray]:
    head = DIM // HEADS
    shapes = {
        "token_embd.weight": (vocab, DIM),
        "blk.0.attn_norm.weight": (DIM,),
        "blk.0.attn_q.weight": (HEADS * head, DIM),
        "blk.0.attn_k.weight": (KV_HEADS * head, DIM),
        "blk.0.attn_v.weight": (KV_HEADS * head, DIM),
        "blk.0.attn_output.weight": (DIM, HEADS * head),
        "blk.0.ffn_norm.weight": (DIM,),
        "blk.0.ffn_gate.weight": (HIDDEN, DIM),
        "blk.0.ffn_up.weight": (HIDDEN, DIM),
        "blk.0.ffn_down.weight": (DIM, HIDDEN),
        "output_norm.weight": (DIM,),
    }
    if not tied:
        shapes["output.weight"] = (vocab, DIM)
    weights = {}
    for name, shape in shapes.items():
        scale = 1.0 if len(shape) == 1 else 0.2
        weights[name] = (rng.standard_normal(shape) * scale + (1.0 if len(shape) == 1 else 0.0)).astype(np.float32)
    return weights


def write_model(path: str, rng: np.random.Generator, kind: str) -> None:
    writer = gguf.GGUFWriter(str(OUT / path), "llama")
    if kind == "llama":
        tokens, scores, types = sentencepiece_vocab()
        add_llama_config(writer, len(tokens))
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        # Mixed types, as a llama.cpp Q4_K_M file mixes them (its rows here are too short for K-quants).
        chosen = {"token_embd.weight": T.Q8_0, "blk.0.attn_q.weight": T.Q4_0, "blk.0.attn_k.weight": T.Q4_1,
                  "blk.0.attn_v.weight": T.F16, "blk.0.attn_output.weight": T.BF16, "blk.0.ffn_gate.weight": T.Q8_0,
                  "blk.0.ffn_up.weight": T.Q4_0, "blk.0.ffn_down.weight": T.F16, "output.weight": T.Q8_0}
    else:
        tokens, types, merges = byte_level_vocab()
        add_llama_config(writer, len(tokens))
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("llama-bpe")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(256)
        writer.add_eos_token_id(257)
        chosen = {}
    weights = random_weights(rng, len(tokens), tied=kind == "gpt2")
    record = {}
    for name, values in weights.items():
        qtype = chosen.get(name, T.F32)
        data = gguf.quants.quantize(values, qtype) if qtype != T.F32 else values
        writer.add_tensor(name, data, raw_dtype=qtype)
        record[name] = {"type": qtype.name, "shape": list(values.shape), **summary(dequantize(data, qtype))}
    finish(writer)
    write_json(path.replace(".gguf", ".json"), {"source": "gguf " + gguf_version(), "vocab": len(tokens), "tensors": record})


# ------------------------------------------------------------------------- what glassbox writes, read back

def write_with_glassbox() -> None:
    for qtype in WRITE_TYPES:
        out = OUT / f"glassbox-{qtype}.gguf"
        subprocess.run(
            ["node", str(ROOT / "bin" / "glassbox.js"), "quantize", "--model", str(OUT / "tiny-gpt2.gguf"),
             "--to", qtype, "--out", str(out), "--force"],
            check=True,
        )


def read_back() -> None:
    """Everything the package sees in glassbox's files: metadata, tensor types and shapes, dequantized values."""
    report = {"source": "gguf " + gguf_version() + " GGUFReader", "files": {}}
    for qtype in WRITE_TYPES:
        reader = gguf.GGUFReader(str(OUT / f"glassbox-{qtype}.gguf"))
        metadata = {}
        for field in reader.fields.values():
            if field.name.startswith("GGUF."):
                continue  # the reader's own entries for the header
            value = field.contents()
            metadata[field.name] = value if not isinstance(value, list) or len(value) <= 8 else {"length": len(value), "first": value[:4], "last": value[-1]}
        tensors = {}
        for tensor in reader.tensors:
            values = dequantize(tensor.data, tensor.tensor_type)
            tensors[tensor.name] = {"type": tensor.tensor_type.name, "shape": [int(n) for n in reversed(tensor.shape)], **summary(values)}
        report["files"][f"glassbox-{qtype}.gguf"] = {"metadata": metadata, "tensors": tensors}
    write_json("glassbox-written.json", report)


def finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_json(name: str, data: dict) -> None:
    (OUT / name).write_text(json.dumps(data, indent=1) + "\n")


def gguf_version() -> str:
    from importlib.metadata import version
    return version("gguf")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261203)
    write_types(rng)
    write_model("tiny-llama.gguf", rng, "llama")
    write_model("tiny-gpt2.gguf", rng, "gpt2")
    if "--no-glassbox" not in sys.argv:
        write_with_glassbox()
        read_back()


if __name__ == "__main__":
    main()
