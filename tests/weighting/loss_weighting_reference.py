#!/usr/bin/python3
"""Independent reference values for the loss-based weighting methods (tests/weighting/loss_weighting_test.cpp).

Run with Debian's NumPy and PyTorch (python3-numpy, python3-torch; FAMO's Adam steps):  /usr/bin/python3 tests/weighting/loss_weighting_reference.py > tests/weighting/loss_weighting_reference.txt
Each output line is `case value value ...`. The weights are derived from each paper's objective with
finite differences where possible (GLS, UW, IMTL-L, STCH), FAMO's with PyTorch autograd and
torch.optim.Adam, not from the closed forms mtl implements.
"""
import numpy as np


def row(name, values):
    print(name, " ".join(f"{v:.17g}" for v in np.ravel(values)))


def fd_grad(f, x, h=1e-6):
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# GLS: weights = d/dL of the geometric mean of the losses.
for name, losses in [("gls_three", [0.5, 2.0, 1.5]), ("gls_equal", [0.7, 0.7]), ("gls_one", [1.3])]:
    row(name, fd_grad(lambda L: np.prod(L) ** (1.0 / len(L)), losses))

# UW (LibMTL form): F(L, s) = sum L/(2 e^s) + s/2; weights = dF/dL, and dF/ds.
L = np.array([1.2, 0.4, 0.0])
s = np.array([-0.5, 0.3, 1.0])
F = lambda L_, s_: np.sum(L_ / (2 * np.exp(s_)) + s_ / 2)
row("uw_weights", fd_grad(lambda x: F(x, s), L))
row("uw_sgrad", fd_grad(lambda x: F(L, x), s))

# DWA: epochs e-2, e-1 mean losses; w = T softmax(r / temperature), r = L(e-1)/L(e-2).
prev = np.array([2.0, 1.0, 0.5])
last = np.array([1.0, 0.9, 0.5])
for name, temp in [("dwa_t2", 2.0), ("dwa_t05", 0.5)]:
    r = last / prev / temp
    row(name, len(r) * np.exp(r) / np.exp(r).sum())

# IMTL-L: F(L, s) = sum e^s L - s; weights = dF/dL, and dF/ds.
L = np.array([1.2, 0.4, 0.05])
s = np.array([0.0, 0.3, -1.0])
F = lambda L_, s_: np.sum(np.exp(s_) * L_ - s_)
row("imtl_l_weights", fd_grad(lambda x: F(x, s), L))
row("imtl_l_sgrad", fd_grad(lambda x: F(L, x), s))

# STCH with warmup_epochs 1: epoch 0 and 1 optimise sum log L; epoch 1's losses average into the nadir;
# from epoch 2 on F = T mu log sum exp(log(L / nadir) / mu).
warm = [np.array([2.0, 0.5, 1.0]), np.array([1.5, 0.4, 0.9])]  # the two steps of epoch 1
nadir = np.mean(warm, axis=0)
row("stch_warmup", fd_grad(lambda x: np.sum(np.log(x)), warm[0]))
Lc = np.array([1.2, 0.35, 1.1])
for name, mu in [("stch_mu1", 1.0), ("stch_mu0.1", 0.1)]:
    f = lambda x: len(x) * mu * np.log(np.sum(np.exp(np.log(x / nadir) / mu)))
    row(name, fd_grad(f, Lc, h=1e-7))

# FAMO, written from the paper's Algorithm 1 with PyTorch's autograd and torch.optim.Adam (Debian's
# python3-torch): three steps, losses before and after each update given.
import torch

torch.set_default_dtype(torch.float64)
xi = torch.zeros(3, requires_grad=True)
opt = torch.optim.Adam([xi], lr=0.025, weight_decay=0.01)
befores = [[2.0, 0.5, 1.0], [1.6, 0.45, 0.95], [1.3, 0.44, 0.7]]
afters = [[1.6, 0.45, 0.95], [1.3, 0.44, 0.7], [1.1, 0.43, 0.6]]
for k, (b, a) in enumerate(zip(befores, afters)):
    Lb = torch.tensor(b, requires_grad=True)
    z = torch.softmax(xi, -1).detach()
    D = Lb + 1e-8
    c = (z / D).sum().detach()
    (torch.log(D) * z / c).sum().backward()
    row(f"famo_step{k}", Lb.grad.numpy())
    delta = torch.log(torch.tensor(b) + 1e-8) - torch.log(torch.tensor(a) + 1e-8)
    d = torch.autograd.grad(torch.softmax(xi, -1), xi, grad_outputs=delta)[0]
    opt.zero_grad()
    xi.grad = d
    opt.step()
