#!/usr/bin/python3
"""bench_ddp.py: PyTorch's own DistributedDataParallel baseline for mtl's distributed benchmark (tools/bench_dist.sh).

Trains MultiLeNet (the model of tools/bench_pytorch.py: conv 1->10 k9, maxpool, relu, conv 10->20 k5, maxpool,
relu, fc 500->50, relu, two Linear(50, 10) heads) on the MultiFashion IDX cache mtl wrote, with N processes x 1
intra-op thread each, c10d Gloo over 127.0.0.1 and torch.nn.parallel.DistributedDataParallel: global batch 256
(each rank its contiguous half), SGD lr 0.01 momentum 0.9, loss = sum of the two mean cross-entropies. Every rank
times the same steps after a warm-up; rank 0 prints one JSON line (samples/s over the global batch).
  /usr/bin/python3 tools/bench_ddp.py --data PREFIX [--nproc 2] [--steps 60] [--warmup 5]
"""
import argparse
import json
import os
import socket
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pytorch import MultiLeNet, read_idx  # noqa: E402  (the same model and data reader)


def rank_main(rank, args, port):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=args.nproc)
    torch.manual_seed(0)
    images = torch.from_numpy(read_idx(args.data + "-images-idx3-ubyte").copy()).unsqueeze(1)
    left = torch.from_numpy(read_idx(args.data + "-left-labels-idx1-ubyte").astype(np.int64))
    right = torch.from_numpy(read_idx(args.data + "-right-labels-idx1-ubyte").astype(np.int64))
    model = torch.nn.parallel.DistributedDataParallel(MultiLeNet())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n, bs = images.shape[0], args.batch_size
    lo, hi = rank * bs // args.nproc, (rank + 1) * bs // args.nproc
    generator = torch.Generator().manual_seed(0)  # the same global order on every rank
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range((args.warmup + args.steps) * bs // n + 1)])
    losses = []
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        idx = order[step * bs:(step + 1) * bs][lo:hi]
        x = images.index_select(0, idx).float().div_(255.0).sub_(0.5).div_(0.5)
        out_left, out_right = model(x)
        loss = F.cross_entropy(out_left, left.index_select(0, idx)) + F.cross_entropy(out_right, right.index_select(0, idx))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    dist.barrier()
    wall = time.perf_counter() - start
    if rank == 0:
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"framework": "pytorch_ddp", "model": "lenet", "processes": args.nproc, "threads": 1,
                          "batch_size": bs, "steps": args.steps, "seconds": wall,
                          "samples_per_s": bs * args.steps / wall, "step_ms": 1e3 * wall / args.steps,
                          "gradient_bytes_per_step": 4 * params, "first_loss": losses[0], "last_loss": losses[-1],
                          "torch_version": torch.__version__}), flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="IDX cache prefix (build/mtl_bench --print-data-prefix)")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(args, port), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
