#!/usr/bin/python3
"""bench_text_pytorch.py: the plain PyTorch baseline for mtl's text benchmark (mtl_bench --models transformer).

Trains the model of configs/bench_transformer.yaml on the very batches mtl trains on: a pre-LayerNorm Transformer
encoder (nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True) with a final LayerNorm;
dim 128, 2 layers, 4 heads, ffn 256, dropout 0.1), learned positions, embedding with padding_idx 0, the <cls>
position's features into a Linear(dim, classes) classification head; Adam lr 1e-3, cross-entropy. The batches
(token ids with <cls> first, padded with 0; labels) are the first warmup + steps batches of the config's first
epoch, written by mtl_bench as JSON ({"vocab_size", "positions", "classes", "batches": [{"ids", "labels"}]});
step i trains on batch i. Throughput counts real tokens only (padding excluded).

Child mode (one thread count, one JSON line on stdout), as mtl_bench starts it:
  /usr/bin/python3 tools/bench_text_pytorch.py --batches data_cache/bench_text/batches_65.json --one-threads 2
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_pytorch import peak_rss_mb, self_cpu_seconds, system_busy_seconds  # the same process statistics


def load_batches(path):
    """mtl's batches: (ids [B, L] int64, labels [B] int64, real tokens) each, and the model's sizes."""
    with open(path) as f:
        data = json.load(f)
    batches = []
    for b in data["batches"]:
        ids = torch.tensor(b["ids"], dtype=torch.int64)
        batches.append((ids, torch.tensor(b["labels"], dtype=torch.int64), int((ids != 0).sum())))
    return batches, data


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


def run_one(a):
    torch.set_num_threads(a.one_threads)
    torch.manual_seed(0)
    batches, sizes = load_batches(a.batches)
    if len(batches) < a.warmup + a.steps:
        raise SystemExit(f"{a.batches} has {len(batches)} batches; {a.warmup + a.steps} needed")
    model = TextTransformer(sizes["vocab_size"], a.dim, a.heads, a.layers, a.ffn_dim, sizes["positions"],
                            sizes["classes"], a.dropout)
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
        ids, labels, n = batches[step]
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
        "workers": 1, "intra_op_threads": a.one_threads, "batch_size": batches[0][0].shape[0],
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
    p.add_argument("--batches", required=True, help="the token batches mtl_bench wrote (JSON)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--ffn-dim", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    a = p.parse_args()
    print(json.dumps(run_one(a)), flush=True)


if __name__ == "__main__":
    main()
