#!/usr/bin/python3
"""torchvision's side of tests/data/image_transform_test.cpp: the preprocessing a pretrained torchvision model
expects, applied to images that mtl wrote.

    /usr/bin/python3 tests/data/image_transform_reference.py IN.safetensors OUT.safetensors H W MEAN STD

IN holds "images", uint8 [N, 1, h, w]. OUT gets "out", float32 [N, 3, H, W]: the images scaled to [0, 1],
repeated to three channels, resized with torchvision.transforms.functional.resize (bilinear, no antialiasing:
torchvision's tensor default before 0.17), normalised with torchvision.transforms.functional.normalize.
MEAN and STD are comma-separated.
"""
import os
import sys

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from torch_pt_reference import read_safetensors, to_torch, write_safetensors  # noqa: E402


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, h, w, mean, std = sys.argv[1:]
    images = to_torch(*read_safetensors(src)["images"])
    x = images.to(torch.float32) / 255.0
    x = x.expand(-1, 3, -1, -1)
    x = F.resize(x, [int(h), int(w)], interpolation=InterpolationMode.BILINEAR, antialias=False)
    x = F.normalize(x, [float(v) for v in mean.split(",")], [float(v) for v in std.split(",")])
    write_safetensors(dst, {"out": x.contiguous()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
