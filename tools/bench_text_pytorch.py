#!/usr/bin/python3
"""bench_text_pytorch.py: the plain PyTorch baseline for mtl's text benchmark (mtl_bench --models transformer,sotu).

Trains the model of a text config (configs/bench_transformer.yaml: one 4-class head on the <cls> token of
synthetic text; configs/sotu.yaml: party and president classification and decade regression on the mean of the
State of the Union passages' tokens) on the very batches mtl trains on: a pre-LayerNorm Transformer encoder
(nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True) with a final LayerNorm),
learned positions, embedding with padding_idx 0, the pooled features (<cls> or the mean over real tokens) into
one Linear head per task; loss = sum of the tasks' losses (cross-entropy, mean squared error), as mtl's `ew`;
Adam or AdamW (weight decay on >= 2-D weights only, as mtl's default) with the config's rate. mtl_bench writes
the batches and the model's sizes as JSON ({"model", "vocab_size", "positions", "dim", "heads", "layers",
"ffn_dim", "dropout", "pooling", "optimizer", "tasks": [{"name", "label", "kind", "outputs"}], "batches":
[{"ids", "targets"}]}); step i trains on batch i. Throughput counts real tokens only (padding excluded).

Child mode (one thread count, one JSON line on stdout), as mtl_bench starts it:
  /usr/bin/python3 tools/bench_text_pytorch.py --batches data_cache/bench_text/batches_sotu_65.json --one-threads 2
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
    """mtl's batches: (ids [B, L] int64, {label: targets}, real tokens) each, and the model's description."""
    with open(path) as f:
        data = json.load(f)
    batches = []
    for b in data["batches"]:
        ids = torch.tensor(b["ids"], dtype=torch.int64)
        targets = {}
        for t in data["tasks"]:
            dtype = torch.int64 if t["kind"] == "class" else torch.float32
            targets[t["label"]] = torch.tensor(b["targets"][t["label"]], dtype=dtype)
        batches.append((ids, targets, int((ids != 0).sum())))
    return batches, data


class TextTransformer(nn.Module):
    def __init__(self, m):
        super().__init__()
        dim = m["dim"]
        self.pooling = m["pooling"]
        if self.pooling not in ("first", "mean"):
            raise SystemExit(f"bench_text_pytorch.py: pooling '{self.pooling}' is not supported (first, mean)")
        self.embedding = nn.Embedding(m["vocab_size"], dim, padding_idx=0)
        self.position = nn.Embedding(m["positions"], dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.dropout = nn.Dropout(m["dropout"])
        layer = nn.TransformerEncoderLayer(dim, m["heads"], m["ffn_dim"], m["dropout"], activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, m["layers"], norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.heads = nn.ModuleList(nn.Linear(dim, t["outputs"]) for t in m["tasks"])

    def forward(self, ids):
        x = self.embedding(ids) + self.position.weight[:ids.shape[1]]
        pad = ids == 0
        x = self.encoder(self.dropout(x), src_key_padding_mask=pad)
        if self.pooling == "first":
            pooled = x[:, 0]
        else:
            real = (~pad).unsqueeze(2).to(x.dtype)
            pooled = (x * real).sum(1) / real.sum(1).clamp_min(1)
        return [h(pooled) for h in self.heads]


def make_optimizer(model, o):
    decayed = [p for p in model.parameters() if p.dim() > 1]
    plain = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decayed, "weight_decay": o["weight_decay"]}, {"params": plain, "weight_decay": 0.0}]
    if o["type"] == "adamw":
        return torch.optim.AdamW(groups, lr=o["lr"])
    if o["type"] == "adam":
        return torch.optim.Adam(groups, lr=o["lr"])
    raise SystemExit(f"bench_text_pytorch.py: optimizer '{o['type']}' is not supported (adam, adamw)")


def total_loss(outputs, targets, tasks):
    loss = 0.0
    for out, t in zip(outputs, tasks):
        y = targets[t["label"]]
        if t["kind"] == "class":
            loss = loss + F.cross_entropy(out, y)
        else:
            loss = loss + F.mse_loss(out.reshape(y.shape), y)
    return loss


def run_one(a):
    torch.set_num_threads(a.one_threads)
    torch.manual_seed(0)
    batches, m = load_batches(a.batches)
    if len(batches) < a.warmup + a.steps:
        raise SystemExit(f"{a.batches} has {len(batches)} batches; {a.warmup + a.steps} needed")
    model = TextTransformer(m)
    model.train()
    optimizer = make_optimizer(model, m["optimizer"])
    losses, tokens, samples = [], 0, 0
    start = time.perf_counter()
    busy0 = self0 = faults0 = 0.0
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            start = time.perf_counter()
            busy0, self0 = system_busy_seconds(), self_cpu_seconds()
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        ids, targets, n = batches[step]
        loss = total_loss(model(ids), targets, m["tasks"])
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
        "framework": "pytorch", "model": m["model"], "memory_format": "contiguous", "threads": a.one_threads,
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
    a = p.parse_args()
    print(json.dumps(run_one(a)), flush=True)


if __name__ == "__main__":
    main()
