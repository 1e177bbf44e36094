#!/usr/bin/python3
"""torchvision's side of tests/backbones/torchvision_backbones_test.cpp: random torchvision models, their state
dicts (torch.save .pt and a safetensors copy) and their features (the input of the classifier, eval mode) on a
random input, for mtl's torchvision-compatible backbones to reproduce.

    /usr/bin/python3 tests/backbones/torchvision_reference.py DIR

For each case NAME: DIR/NAME.pt, DIR/NAME.safetensors (the same state dict) and DIR/NAME_io.safetensors
({"x": input, "features": model features}). Prints one line per case: NAME.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from torch_pt_reference import write_safetensors  # noqa: E402


def randomize_batch_norm(model, gen):
    # Fresh BN layers are the identity in eval mode; random statistics make the test see them.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def randomize_all(model, gen):
    # ViT starts with zero biases and class token: random values everywhere make the test see every tensor.
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def case(out, name, model, x, vit=False):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        randomize_all(model, gen) if vit else randomize_batch_norm(model, gen)
    model.eval()
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, name + ".pt"))
    write_safetensors(os.path.join(out, name + ".safetensors"), sd)
    if vit:
        model.heads = torch.nn.Identity()  # features before the classifier
    else:
        model.fc = torch.nn.Identity()
    with torch.no_grad():
        features = model(x)
    write_safetensors(os.path.join(out, name + "_io.safetensors"), {"x": x, "features": features})
    print(name)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    case(out, "resnet18", torchvision.models.resnet18(), torch.randn(2, 3, 64, 64))
    case(out, "resnet50", torchvision.models.resnet50(), torch.randn(2, 3, 64, 64))
    gray = torchvision.models.resnet18()
    gray.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)  # one input channel, an odd image size
    case(out, "resnet18_gray", gray, torch.randn(3, 1, 37, 45))
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                                               mlp_dim=96)
    case(out, "vit", vit, torch.randn(2, 3, 32, 32), vit=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
