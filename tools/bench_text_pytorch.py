#!/usr/bin/python3
"""bench_text_pytorch.py: the plain PyTorch baseline for mtl's text benchmark (mtl_bench --models transformer).

Trains the same model on the same synthetic token batches as `mtl_bench --run transformer:W:I`: a pre-LayerNorm
Transformer encoder (nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True) with a
final LayerNorm), learned positions, embedding with padding_idx 0, the <cls> position's features into a
Linear(dim, 4) classification head; Adam lr 1e-3, cross-entropy. Data (same formula as tools/bench_train.cpp):
row g (0-based over the run's distinct rows) has length 16 + (g * 7919 + 104729) % 113 in [16, 128], token 0 is
<cls> (2), token j >= 1 is 3 + (g * 2654435761 + j * 40503) % (vocab - 3), the label is token 1 % 4; each batch
is padded with 0 to its longest row; 8 distinct batches are cycled. Throughput counts real tokens only.

Child mode (one thread count, one JSON line on stdout), as mtl_bench starts it:
  /usr/bin/python3 tools/bench_text_pytorch.py --one-threads 2 [--steps 20] [--warmup 3]
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def text_batches(count, batch_size, vocab, min_len=16, max_len=128, classes=4):
    """The benchmark's deterministic batches: (ids [B, L] int64, labels [B], real tokens)."""
    out = []
    for b in range(count):
        rows, labels, tokens = [], [], 0
        for r in range(batch_size):
            g = b * batch_size + r
            n = min_len + (g * 7919 + 104729) % (max_len - min_len + 1)
            ids = [2] + [3 + (g * 2654435761 + j * 40503) % (vocab - 3) for j in range(1, n)]
            rows.append(ids)
            labels.append(ids[1] % classes)
            tokens += n
        width = max(len(x) for x in rows)
        ids = torch.zeros(batch_size, width, dtype=torch.int64)
        for r, x in enumerate(rows):
            ids[r, :len(x)] = torch.tensor(x, dtype=torch.int64)
        out.append((ids, torch.tensor(labels, dtype=torch.int64), tokens))
    return out


class TextTransformer(nn.Module):
    def __init__(self, vocab, dim, heads, layers, ffn, max_len, classes, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        x = self.embedding(ids) + self.position.weight[:ids.shape[1]]
        x = self.encoder(self.dropout(x), src_key_padding_mask=ids == 0)
        return self.head(x[:, 0])


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def system_busy_seconds():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def run_one(a):
    torch.set_num_threads(a.one_threads)
    torch.manual_seed(0)
    batches = text_batches(8, a.batch_size, a.vocab)
    model = TextTransformer(a.vocab, a.dim, a.heads, a.layers, a.ffn_dim, 128, 4, a.dropout)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, tokens, samples = [], 0, 0
    start = time.perf_counter()
    busy0 = self0 = faults0 = 0.0
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            start = time.perf_counter()
            busy0, self0 = system_busy_seconds(), self_cpu_seconds()
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        ids, labels, n = batches[step % len(batches)]
        loss = F.cross_entropy(model(ids), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= a.warmup:
            losses.append(loss.item())
            tokens += n
            samples += ids.shape[0]
    wall = time.perf_counter() - start
    self_cpu = self_cpu_seconds() - self0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return {
        "framework": "pytorch", "model": "transformer", "memory_format": "contiguous", "threads": a.one_threads,
        "workers": 1, "intra_op_threads": a.one_threads, "batch_size": a.batch_size, "train_size": 8 * a.batch_size,
        "warmup": a.warmup, "steps": a.steps, "seconds": wall, "samples_per_s": samples / wall,
        "tokens_per_s": tokens / wall, "step_ms": 1e3 * wall / a.steps, "stall_share": 0.0,
        "peak_rss_mb": peak_rss_mb(), "page_faults_per_step": faults / a.steps, "cpu_cores_used": self_cpu / wall,
        "background_cores": max(0.0, (system_busy_seconds() - busy0 - self_cpu) / wall),
        "first_loss": losses[0], "last_loss": losses[-1], "first_fifth_loss": first, "last_fifth_loss": last,
        "trains": last < first, "torch_version": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one-threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--ffn-dim", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    a = p.parse_args()
    print(json.dumps(run_one(a)), flush=True)


if __name__ == "__main__":
    main()
