#!/usr/bin/python3
"""bench_pytorch.py: the plain PyTorch baseline for mtl's training benchmark (tools/bench.sh).

Trains the models of mtl_bench's image rows (configs/multi_fashion.yaml, and the same with
model.backbone={type: mlp, hidden: [2048, 2048]}) on the same MultiFashion data (the IDX cache files mtl wrote;
`build/mtl_bench --print-data-prefix` prints their prefix): MultiLeNet (conv 1->10 k9, maxpool 2, relu,
conv 10->20 k5, maxpool 2, relu, flatten, fc 500->50, relu, two Linear(50, 10) heads) and a wide MLP
(1296 -> 2048 -> 2048 with relu, two Linear(2048, 10) heads); batch 256, SGD lr 0.01 momentum 0.9, loss =
sum of the two tasks' mean cross-entropies. The data are held as uint8 in memory and each batch is
gathered and normalised ((x/255 - 0.5) / 0.5) inside the step, the way a plain PyTorch loop does it; that
share of the step is reported as "stall_share" (mtl's loader does the same work on its own thread).

Each (model, torch.set_num_threads(k)) runs in its own child process (fresh heap, its own peak RSS) and
prints one JSON line; build/mtl_bench --pytorch tools/bench_pytorch.py starts those children itself and
merges their lines into its table. Standalone:
  /usr/bin/python3 tools/bench_pytorch.py --data PREFIX [--threads 1,2] [--steps 60] [--warmup 5]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    """An uncompressed IDX file of uint8 as a numpy array (header: 0,0,type,ndim, then ndim big-endian sizes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an uncompressed uint8 IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MultiLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 9)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc = nn.Linear(500, 50)
        self.left = nn.Linear(50, 10)
        self.right = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc(x.flatten(1)))
        return self.left(x), self.right(x)


class WideMlp(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        layers, d = [], 36 * 36
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.trunk = nn.Sequential(*layers)
        self.left = nn.Linear(d, 10)
        self.right = nn.Linear(d, 10)

    def forward(self, x):
        x = self.trunk(x.flatten(1))
        return self.left(x), self.right(x)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def system_busy_seconds():
    """CPU seconds all processes have spent busy since boot (/proc/stat, first line)."""
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def run_one(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.from_numpy(read_idx(args.data + "-images-idx3-ubyte").copy()).unsqueeze(1)  # [N,1,36,36]
    left = torch.from_numpy(read_idx(args.data + "-left-labels-idx1-ubyte").astype(np.int64))
    right = torch.from_numpy(read_idx(args.data + "-right-labels-idx1-ubyte").astype(np.int64))
    model = MultiLeNet() if args.model == "lenet" else WideMlp(args.mlp_hidden)
    channels_last = args.memory_format == "channels_last"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    n, bs = images.shape[0], args.batch_size
    order = torch.cat([torch.randperm(n) for _ in range((args.warmup + args.steps) * bs // n + 1)])
    losses, data_time, samples = [], 0.0, 0
    start = time.perf_counter()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start, data_time = time.perf_counter(), 0.0
            busy0, self0 = system_busy_seconds(), self_cpu_seconds()
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        idx = order[step * bs:(step + 1) * bs]
        x = images.index_select(0, idx).float().div_(255.0).sub_(0.5).div_(0.5)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y_left, y_right = left.index_select(0, idx), right.index_select(0, idx)
        t1 = time.perf_counter()
        out_left, out_right = model(x)
        loss = F.cross_entropy(out_left, y_left) + F.cross_entropy(out_right, y_right)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            data_time += t1 - t0
            losses.append(loss.item())
            samples += bs
    wall = time.perf_counter() - start
    self_cpu = self_cpu_seconds() - self0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    background = max(0.0, (system_busy_seconds() - busy0 - self_cpu) / wall)

    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return {
        "framework": "pytorch", "model": args.model, "memory_format": args.memory_format, "threads": args.threads, "workers": 1,
        "intra_op_threads": args.threads, "batch_size": bs, "train_size": n, "warmup": args.warmup,
        "steps": args.steps, "seconds": wall, "samples_per_s": samples / wall,
        "step_ms": 1e3 * wall / args.steps, "stall_share": data_time / wall, "peak_rss_mb": peak_rss_mb(),
        "page_faults_per_step": faults / args.steps, "cpu_cores_used": self_cpu / wall, "background_cores": background,
        "first_loss": losses[0], "last_loss": losses[-1], "first_fifth_loss": first, "last_fifth_loss": last,
        "trains": last < first, "torch_version": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="IDX cache prefix (build/mtl_bench --print-data-prefix)")
    p.add_argument("--models", default="lenet,mlp")
    p.add_argument("--threads", default="", help="comma-separated thread counts (default 1..cores)")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mlp-hidden", default="2048,2048")
    p.add_argument("--memory-format", default="contiguous", choices=["contiguous", "channels_last"],
                   help="tensor layout: contiguous (NCHW, the plain loop) or channels_last (NHWC)")
    p.add_argument("--model", help=argparse.SUPPRESS)  # child mode: one model ...
    p.add_argument("--one-threads", type=int, help=argparse.SUPPRESS)  # ... at one thread count
    args = p.parse_args()
    args.mlp_hidden = [int(h) for h in args.mlp_hidden.split(",")]

    if args.model:
        args.threads = args.one_threads
        print(json.dumps(run_one(args)), flush=True)
        return

    # Physical cores, as mtl counts them: distinct (physical id, core id) pairs.
    cores = set()
    with open("/proc/cpuinfo") as f:
        phys = "0"
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                phys = value.strip()
            elif key.strip() == "core id":
                cores.add((phys, value.strip()))
    ncores = len(cores) or os.cpu_count()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else list(range(1, ncores + 1))
    for model in args.models.split(","):
        for k in threads:
            cmd = [sys.executable, os.path.abspath(__file__), "--data", args.data, "--model", model,
                   "--one-threads", str(k), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-size", str(args.batch_size), "--mlp-hidden", ",".join(map(str, args.mlp_hidden)),
                   "--memory-format", args.memory_format]
            print(f"  pytorch {model} threads={k} ... ", end="", file=sys.stderr, flush=True)
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            row = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
            print(f"{row['samples_per_s']:.0f} samples/s, loss {row['first_loss']:.3f} -> {row['last_loss']:.3f}",
                  file=sys.stderr, flush=True)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
