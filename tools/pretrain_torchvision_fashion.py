#!/usr/bin/python3
"""Pretrain a torchvision ResNet-18 on Fashion-MNIST in plain PyTorch and save its state dict with torch.save: the
Python half of the README's worked example (mtl then fine-tunes it on MultiFashion: configs/multi_fashion_resnet18.yaml).

    /usr/bin/python3 tools/pretrain_torchvision_fashion.py [--epochs 1] [--train-size 0] [--out pretrained/resnet18_fashion.pt]

Each gray 28x28 item is placed at a random spot of a 36x36 canvas (MultiFashion's image size; a new spot every
epoch, the test split's fixed by the seed), scaled to (x - 0.5) / 0.5 as mtl's readers normalise images, and
repeated to the 3 channels of torchvision's first convolution (mtl sums those kernels back to one channel:
model.init.adapt_channels). SGD with momentum, 2 threads by default. Prints the time and the test accuracy.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torchvision

ROOT = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(ROOT, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


CANVAS, ITEM = 36, 28


def images(name):
    return torch.from_numpy(read_idx(name).copy())  # uint8 [N, 28, 28]


def on_canvas(items, generator):
    """uint8 items [B, 28, 28] at random spots of 36x36 canvases, normalised, 3 channels: float [B, 3, 36, 36]."""
    b = items.shape[0]
    canvas = torch.zeros(b, CANVAS, CANVAS, dtype=torch.uint8)
    room = CANVAS - ITEM + 1
    dy = torch.randint(0, room, (b,), generator=generator)
    dx = torch.randint(0, room, (b,), generator=generator)
    for i in range(b):
        canvas[i, dy[i]:dy[i] + ITEM, dx[i]:dx[i] + ITEM] = items[i]
    x = (canvas.to(torch.float32) / 255.0 - 0.5) / 0.5
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=0, help="use the first N training images (0: all 60000)")
    p.add_argument("--out", default="pretrained/resnet18_fashion.pt")
    args = p.parse_args()
    if not os.path.isdir(ROOT):
        sys.exit("pretrain_torchvision_fashion: %s is missing (install dataset-fashion-mnist)" % ROOT)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train = images("train-images-idx3-ubyte.gz")
    y_train = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    if args.train_size > 0:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    x_test = images("t10k-images-idx3-ubyte.gz")
    y_test = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    start = time.time()
    places = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = torch.nn.functional.cross_entropy(model(on_canvas(x_train[idx], places)), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print("epoch %d: last batch loss %.4f, %.0f s" % (epoch + 1, loss.item(), time.time() - start), flush=True)
    model.eval()
    correct = 0
    test_places = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        for i in range(0, len(x_test), 500):
            correct += (model(on_canvas(x_test[i:i + 500], test_places)).argmax(1) == y_test[i:i + 500]).sum().item()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print("test accuracy %.4f; %d epochs in %.0f s; saved %s" % (correct / len(x_test), args.epochs,
                                                                  time.time() - start, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
