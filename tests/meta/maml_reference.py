"""MAML reference for tests/meta/meta_test.cpp, written with PyTorch's own autograd (not mtl's code).

Reads IN (a torch.save'd dict written by mtl): the model's parameters as 'p/<name>' (a one-layer ReLU MLP trunk,
backbone.layers.0.*, and one linear head per task, heads.<task>.out.*), each episode's support and query sets
as 'e<i>/support_x', 'e<i>/support_y', 'e<i>/query_x', 'e<i>/query_y' and its task index 'e<i>/task', and the
inner loop as 'inner_lr'. For each inner step count in STEPS and each adaptation (heads: the episode's head; all),
unrolls the inner loop with create_graph=True and differentiates the query loss w.r.t. the initial parameters.
Writes OUT: '<steps>/<adapt>/e<i>/<name>' -> the meta-gradient (zeros where the loss does not depend on it).
    maml_reference.py IN OUT STEPS...
"""
import sys

import torch
import torch.nn.functional as F


def forward(p, x, task):
    h = torch.relu(x @ p["backbone.layers.0.weight"].T + p["backbone.layers.0.bias"])
    return h @ p[f"heads.{task}.out.weight"].T + p[f"heads.{task}.out.bias"]


def main():
    data = torch.load(sys.argv[1])
    out_path, steps_list = sys.argv[2], [int(s) for s in sys.argv[3:]]
    names = [k[2:] for k in data if k.startswith("p/")]
    tasks = sorted({n.split(".")[1] for n in names if n.startswith("heads.")})
    lr = float(data["inner_lr"])
    episodes = sorted({int(k.split("/")[0][1:]) for k in data if k.startswith("e")})
    out = {}
    for steps in steps_list:
        for adapt in ("heads", "all"):
            for e in episodes:
                task = tasks[int(data[f"e{e}/task"])]
                p0 = {n: data["p/" + n].clone().requires_grad_(True) for n in names}
                adapted = [n for n in names if adapt == "all" or n.startswith(f"heads.{task}.")]
                p = dict(p0)
                sx, sy = data[f"e{e}/support_x"], data[f"e{e}/support_y"]
                for _ in range(steps):
                    loss = F.cross_entropy(forward(p, sx, task), sy)
                    grads = torch.autograd.grad(loss, [p[n] for n in adapted], create_graph=True, allow_unused=True)
                    p = {**p, **{n: p[n] - lr * g for n, g in zip(adapted, grads) if g is not None}}
                lq = F.cross_entropy(forward(p, data[f"e{e}/query_x"], task), data[f"e{e}/query_y"])
                grads = torch.autograd.grad(lq, [p0[n] for n in names], allow_unused=True)
                for n, g in zip(names, grads):
                    out[f"{steps}/{adapt}/e{e}/{n}"] = torch.zeros_like(p0[n]) if g is None else g.detach()
    torch.save(out, out_path)


if __name__ == "__main__":
    main()
