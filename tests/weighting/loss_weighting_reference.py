#!/usr/bin/python3
"""Independent reference values for the loss-based weighting methods (tests/weighting/loss_weighting_test.cpp).

Run with Debian's NumPy:  /usr/bin/python3 tests/weighting/loss_weighting_reference.py > tests/weighting/loss_weighting_reference.txt
Each output line is `case value value ...`. The weights are derived from each paper's objective with
finite differences where possible (GLS, UW), not from the closed forms mtl implements.
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
