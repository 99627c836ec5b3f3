#!/usr/bin/env python3
"""
The PyTorch side of `npm run bench:train` (scripts/bench-train.ts): training tokens/s of the same
Llama-style model, with the same configuration and batch shape, trained the same way, on the CPU.

    x = embedding[inputs]
    for each layer:
        x = x + wo . Attention(RoPE(wq.n), RoPE(wk.n), wv.n)     n = RMSNorm(x).attnNorm
        x = x + wDown . (silu(wGate.n) * wUp.n)                  n = RMSNorm(x).ffnNorm
    logits = embedding . RMSNorm(x).finalNorm                     (tied classifier)
    loss = cross-entropy(logits, targets)

One step is what Glassbox's trainStep does: forward, backward, clip the gradient norm to 1.0, AdamW
(betas 0.9/0.95, eps 1e-8, weight decay 0.1 on the matrices only) at the warm-up/cosine learning rate.

Plain eager ops in float32: RMSNorm (eps 1e-5), RoPE in Hugging Face's rotate-half layout (theta 10000),
causal attention written out by hand with grouped-query heads (each key/value head repeated for its group
of query heads, as Hugging Face's repeat_kv does), SwiGLU. No torch.compile, and torch 1.13 has no
F.scaled_dot_product_attention. Weights are normal(0, 0.02) with norm gains at 1, tokens uniformly random,
all seeded.
OMP_WAIT_POLICY defaults to PASSIVE (see below), and the BLAS torch loaded is reported: Debian's torch
multiplies matrices with the system's libblas.so.3, which is the slow reference BLAS unless OpenBLAS
(libopenblas0-pthread) is installed.

Prints tokens/s, or with --json one JSON line. Exits with status 3 (and a message on stderr) when torch
cannot be imported, so the caller can tell "not installed" from a failure.
"""

import argparse
import json
import math
import os
import re
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch CPU training tokens/s of the Glassbox configuration")
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=2e-4)
    p.add_argument("--lr-warmup", type=int, default=100, help="learning-rate warm-up steps")
    p.add_argument("--total-steps", type=int, default=3000, help="where the cosine reaches --min-lr")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument(
        "--serve",
        action="store_true",
        help="after the warm-up, run one timed step per line 'step' read from stdin (printing its seconds as "
        "JSON), until 'done' or end of input; then print the summary: the caller interleaves these steps "
        "with its own, so that other work on the machine slows both sides alike",
    )
    return p.parse_args()


ARGS = parse_args()
# Read once, when torch loads libgomp and the BLAS, so set before the import (your own settings win):
# - OMP_WAIT_POLICY=PASSIVE: a thread that finishes its share of a parallel loop sleeps instead of
#   spinning. On a machine other work keeps busy, spinning threads take the core the others wait for,
#   and 2-thread steps get several times slower.
# - OPENBLAS_NUM_THREADS: OpenBLAS keeps its own thread pool, which torch.set_num_threads does not size.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print(
        "bench_train_torch.py: PyTorch is not installed for this python "
        f"({sys.executable}); on Debian: apt-get install -y python3-torch (then use /usr/bin/python3)",
        file=sys.stderr,
    )
    sys.exit(3)


def blas_library():
    """The BLAS library torch loaded (Debian's torch uses whichever libblas.so.3 the system provides). The pip
    wheels link MKL into libtorch itself, where no file of its own shows it (the only BLAS file loaded is then
    NumPy's, which torch does not multiply with)."""
    if torch.backends.mkl.is_available():
        return "MKL (linked into libtorch)"
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if re.search(r"blas|mkl|blis", os.path.basename(path)):
                    return os.path.realpath(path)
    except OSError:
        pass
    return "unknown"


def rms_norm(x, gain, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Llama(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.heads, self.kv_heads = a.heads, a.kv_heads
        self.head_dim = a.dim // a.heads
        hd = self.head_dim

        def matrix(rows, cols):
            return torch.nn.Parameter(torch.randn(rows, cols) * 0.02)

        def gain():
            return torch.nn.Parameter(torch.ones(a.dim))

        self.embedding = matrix(a.vocab, a.dim)
        self.layers = torch.nn.ModuleList()
        for _ in range(a.layers):
            layer = torch.nn.Module()
            layer.attn_norm = gain()
            layer.wq = matrix(a.heads * hd, a.dim)
            layer.wk = matrix(a.kv_heads * hd, a.dim)
            layer.wv = matrix(a.kv_heads * hd, a.dim)
            layer.wo = matrix(a.dim, a.heads * hd)
            layer.ffn_norm = gain()
            layer.w_gate = matrix(a.hidden, a.dim)
            layer.w_up = matrix(a.hidden, a.dim)
            layer.w_down = matrix(a.dim, a.hidden)
            self.layers.append(layer)
        self.final_norm = gain()

        # RoPE, rotate-half layout: pair (i, i + hd/2) turns at theta^(-2i/hd) radians per position.
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        angles = torch.outer(torch.arange(a.seq_len, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)  # [T, hd]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        mask = torch.triu(torch.ones(a.seq_len, a.seq_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("future", mask, persistent=False)

    def attention(self, layer, n):
        B, T, _ = n.shape
        hd, H, KV = self.head_dim, self.heads, self.kv_heads
        q = F.linear(n, layer.wq).view(B, T, H, hd).transpose(1, 2)  # [B, H, T, hd]
        k = F.linear(n, layer.wk).view(B, T, KV, hd).transpose(1, 2)  # [B, KV, T, hd]
        v = F.linear(n, layer.wv).view(B, T, KV, hd).transpose(1, 2)
        cos, sin = self.cos[:T], self.sin[:T]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if KV != H:  # repeat_kv: query head h reads key/value head h // (H/KV)
            k = k[:, :, None].expand(B, KV, H // KV, T, hd).reshape(B, H, T, hd)
            v = v[:, :, None].expand(B, KV, H // KV, T, hd).reshape(B, H, T, hd)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(self.future[:T, :T], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v  # [B, H, T, hd]
        return F.linear(out.transpose(1, 2).reshape(B, T, H * hd), layer.wo)

    def forward(self, inputs, targets):
        x = F.embedding(inputs, self.embedding)
        for layer in self.layers:
            x = x + self.attention(layer, rms_norm(x, layer.attn_norm))
            n = rms_norm(x, layer.ffn_norm)
            x = x + F.linear(F.silu(F.linear(n, layer.w_gate)) * F.linear(n, layer.w_up), layer.w_down)
        logits = F.linear(rms_norm(x, self.final_norm), self.embedding)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def learning_rate(step, a):
    """The same schedule as src/engine/train/schedule.ts."""
    if step < a.lr_warmup:
        return a.lr * (step + 1) / a.lr_warmup
    if step >= a.total_steps:
        return a.min_lr
    progress = (step - a.lr_warmup) / (a.total_steps - a.lr_warmup)
    return a.min_lr + (a.lr - a.min_lr) * (1 + math.cos(math.pi * progress)) / 2


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Llama(a)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=a.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    batches = [
        (
            torch.randint(0, a.vocab, (a.batch, a.seq_len)),
            torch.randint(0, a.vocab, (a.batch, a.seq_len)),
        )
        for _ in range(a.warmup + a.steps)
    ]

    def step(index):
        inputs, targets = batches[index]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(index, a)
        optimizer.zero_grad(set_to_none=True)
        loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss.item()

    first_loss = None
    for i in range(a.warmup):
        loss = step(i)
        first_loss = loss if first_loss is None else first_loss
    seconds = []

    def timed(i):
        start = time.perf_counter()
        loss = step(i)
        seconds.append(time.perf_counter() - start)
        return loss

    if a.serve:
        print(json.dumps({"ready": True}), flush=True)
        i = a.warmup
        for line in sys.stdin:
            if line.strip() != "step":
                break
            loss = timed(a.warmup + (i - a.warmup) % a.steps)  # the batches again, if asked for more steps
            first_loss = loss if first_loss is None else first_loss
            print(json.dumps({"seconds": seconds[-1], "loss": loss}), flush=True)
            i += 1
    else:
        for i in range(a.warmup, a.warmup + a.steps):
            loss = timed(i)
            first_loss = loss if first_loss is None else first_loss

    if not seconds:
        print("bench_train_torch.py: no timed step was run", file=sys.stderr)
        sys.exit(1)
    tokens = a.batch * a.seq_len
    ordered = sorted(seconds)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    result = {
        "tokensPerSecond": tokens * len(seconds) / sum(seconds),
        "bestStepTokensPerSecond": tokens / min(seconds),
        "medianStepTokensPerSecond": tokens / median,
        "stepSeconds": seconds,
        "firstLoss": first_loss,
        "lastLoss": loss,
        "parameters": sum(p.numel() for p in params),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "blas": blas_library(),
        "ompWaitPolicy": os.environ["OMP_WAIT_POLICY"],
        "openblasThreads": os.environ["OPENBLAS_NUM_THREADS"],
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(
            f"PyTorch {result['torch']} on {result['threads']} threads: "
            f"{result['tokensPerSecond']:.0f} tokens/s ({a.steps} steps of {a.batch}x{a.seq_len} tokens, "
            f"best step {result['bestStepTokensPerSecond']:.0f}); {result['parameters']:,} parameters, "
            f"loss {first_loss:.3f} -> {loss:.3f}; BLAS {result['blas']}"
        )


if __name__ == "__main__":
    main()
