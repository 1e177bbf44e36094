#!/usr/bin/python3
"""PyTorch's side of the torch_transformer_encoder preset test (tests/backbones/torchvision_backbones_test.cpp):
an embedding, learned positions and a torch.nn.TransformerEncoder (relu, batch_first, dropout 0.1, in eval mode),
random weights, run on token ids with padding (id 0) and src_key_padding_mask.

    /usr/bin/python3 tests/backbones/torch_transformer_reference.py DIR

For norm_first in (True, False): DIR/encoder_<pre|post>.pt (the wrapper's state dict: embedding.weight,
position.weight, encoder.layers.<i>.*, and encoder.norm.* for pre-LN) and DIR/encoder_<pre|post>_io.safetensors
({"ids": [B, L] int64, "tokens": [B, L, D] the encoder's output}). Also DIR/encoder_post_qkv.pt: the post-LN
state dict with each fused in_proj_weight / in_proj_bias stored as separate self_attn.{q,k,v}_proj.{weight,bias},
chunked as torch.nn.functional.multi_head_attention_forward chunks them (the layout of checkpoints that keep the
projections apart).
"""
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from torch_pt_reference import write_safetensors  # noqa: E402

VOCAB, DIM, HEADS, FFN, LAYERS, LENGTH = 50, 16, 4, 24, 2, 7


class Wrapper(torch.nn.Module):
    def __init__(self, norm_first):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.position = torch.nn.Embedding(LENGTH, DIM)
        layer = torch.nn.TransformerEncoderLayer(DIM, HEADS, FFN, dropout=0.1, batch_first=True, norm_first=norm_first)
        self.encoder = torch.nn.TransformerEncoder(layer, LAYERS, norm=torch.nn.LayerNorm(DIM) if norm_first else None,
                                                   enable_nested_tensor=False)

    def forward(self, ids):
        x = self.embedding(ids) + self.position.weight[: ids.shape[1]]
        return self.encoder(x, src_key_padding_mask=ids == 0)


def separate_projections(state):
    out = collections.OrderedDict()
    for name, t in state.items():
        if ".in_proj_" in name:
            stem, kind = name.split(".in_proj_")
            for part, chunk in zip("qkv", t.chunk(3)):
                out["%s.%s_proj.%s" % (stem, part, kind)] = chunk.clone()
        else:
            out[name] = t
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    ids = torch.randint(1, VOCAB, (3, LENGTH))
    ids[1, 4:] = 0  # padding at the end of two rows
    ids[2, 6:] = 0
    for norm_first, name in ((True, "pre"), (False, "post")):
        model = Wrapper(norm_first)
        with torch.no_grad():
            for p in model.parameters():  # LayerNorm weights and biases too
                p.add_(torch.randn(p.shape) * 0.2)
            model.embedding.weight[0].zero_()
        model.eval()
        torch.save(model.state_dict(), os.path.join(out, "encoder_%s.pt" % name))
        if not norm_first:
            torch.save(separate_projections(model.state_dict()), os.path.join(out, "encoder_post_qkv.pt"))
        with torch.no_grad():
            tokens = model(ids)
        write_safetensors(os.path.join(out, "encoder_%s_io.safetensors" % name), {"ids": ids, "tokens": tokens})
    return 0


if __name__ == "__main__":
    sys.exit(main())
