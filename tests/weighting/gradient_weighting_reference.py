#!/usr/bin/python3
"""Independent reference values for the gradient-based weighting methods (gradient_weighting_test.cpp).

Needs Debian's python3-numpy and python3-scipy (only to regenerate the fixture, not to run the tests):
  /usr/bin/python3 tests/weighting/gradient_weighting_reference.py > tests/weighting/gradient_weighting_reference.txt
Each line is `method case v_1 ... v_P`: the combined shared gradient. The methods are solved from their
definitions with SciPy's general-purpose solvers (SLSQP, root finding, primal projections), not with the
algorithms mtl uses (Frank-Wolfe, accelerated projected gradient, Newton, coordinate descent).
"""
import numpy as np
from scipy.optimize import minimize, root

CASES = {
    "conflict": (np.array([[1.0, 0.5, -0.3, 2.0, 0.0],
                           [-0.8, 0.3, 1.2, -1.5, 0.4],
                           [0.2, -1.0, 0.7, 0.9, -0.6]]), np.array([0.9, 1.4, 0.6])),
    "identical": (np.array([[0.5, -1.0, 2.0, 0.3]] * 2), np.array([1.0, 0.5])),
    "opposite": (np.array([[0.5, -1.0, 2.0, 0.3], [-0.5, 1.0, -2.0, -0.3]]), np.array([1.0, 0.5])),
    "zero": (np.array([[1.0, 0.5, -0.3, 2.0], [0.0, 0.0, 0.0, 0.0], [-0.8, 0.3, 1.2, -1.5]]), np.array([0.9, 1.4, 0.6])),
    "one": (np.array([[0.5, -1.0, 2.0, 0.3]]), np.array([0.7])),
}
SIMPLEX = {"type": "eq", "fun": lambda x: np.sum(x) - 1}
OPTS = {"ftol": 1e-15, "maxiter": 1000}


def row(method, case, v):
    print(method, case, " ".join(f"{x:.17g}" for x in np.ravel(v)))


def mgda(G, L, norm):
    n = np.ones(len(G))
    l2 = np.linalg.norm(G, axis=1)
    if norm == "l2": n = l2
    if norm == "loss": n = L
    if norm == "loss+": n = L * l2
    Gn = G / np.maximum(n, 1e-12)[:, None]
    T = len(G)
    res = minimize(lambda a: np.sum((a @ Gn) ** 2), np.ones(T) / T, bounds=[(0, 1)] * T,
                   constraints=[SIMPLEX], method="SLSQP", options=OPTS)
    return res.x @ Gn


def pcgrad_fixed(G):
    out = np.zeros(G.shape[1])
    for i in range(len(G)):
        gi = G[i].copy()
        for j in range(len(G)):
            if j != i and gi @ G[j] < 0 and G[j] @ G[j] > 0:
                gi -= gi @ G[j] / (G[j] @ G[j]) * G[j]
        out += gi
    return out


def cagrad(G, c):
    T = len(G)
    A = G @ G.T
    b = np.ones(T) / T
    g0_norm = np.sqrt(A.mean() + 1e-8)
    cc = c * g0_norm + 1e-8
    obj = lambda x: x @ A @ b + cc * np.sqrt(x @ A @ x + 1e-8)
    res = minimize(obj, b, bounds=[(0, 1)] * T, constraints=[SIMPLEX], method="SLSQP", options=OPTS)
    gw = res.x @ G
    lam = cc / (np.linalg.norm(gw) + 1e-8)
    return (G.mean(0) + lam * gw) / (1 + c * c)


def imtl(G_all):
    # a with sum(a) = 1 and equal projections d.u_1 = d.u_t, d = a @ G (least squares for dependent rows);
    # tasks with a zero gradient are left out (weight 0).
    G = G_all[[t for t in range(len(G_all)) if G_all[t] @ G_all[t] > 0]]
    T = len(G)
    if T <= 1:
        return G.sum(0) if T else np.zeros(G_all.shape[1])
    U = G / np.linalg.norm(G, axis=1)[:, None]
    A = [np.ones(T)] + [G @ (U[0] - U[t]) for t in range(1, T)]
    b = [1.0] + [0.0] * (T - 1)
    a = np.linalg.lstsq(np.array(A), np.array(b), rcond=None)[0]
    return a @ G


def nash(G):
    live = [t for t in range(len(G)) if G[t] @ G[t] > 0]
    M = G[live] @ G[live].T
    M = M / np.linalg.norm(M) + 1e-6 * np.eye(len(live))
    sol = root(lambda a: M @ a - 1 / a, np.ones(len(live)), tol=1e-14)
    a = np.zeros(len(G))
    a[live] = sol.x
    return a @ G


def project_to_dual_cone(G, g):
    # Primal: min |x - g|^2 subject to G x >= 0.
    res = minimize(lambda x: np.sum((x - g) ** 2), g, jac=lambda x: 2 * (x - g),
                   constraints=[{"type": "ineq", "fun": lambda x: G @ x, "jac": lambda x: G}],
                   method="SLSQP", options=OPTS)
    return res.x


def box_dual(G, lower, reg_eps):
    M = G @ G.T
    M = M + reg_eps * max(np.trace(M) / len(G), 1e-300) * np.eye(len(G))
    res = minimize(lambda u: u @ M @ u, lower + 0.1, jac=lambda u: 2 * M @ u, bounds=[(l, None) for l in lower],
                   method="L-BFGS-B", options={"ftol": 1e-16, "gtol": 1e-14, "maxiter": 10000})
    return res.x @ G


def gradvac_fixed(G, beta, steps):
    T = len(G)
    phi = np.zeros((T, T))
    for _ in range(steps):
        out = np.zeros(G.shape[1])
        for i in range(T):
            gi = G[i].copy()
            for j in range(T):
                ni, nj = np.linalg.norm(gi), np.linalg.norm(G[j])
                if j == i or ni == 0 or nj == 0:
                    continue
                c = gi @ G[j] / (ni * nj)
                if c < phi[i, j]:
                    gi = gi + G[j] * ni * (phi[i, j] * np.sqrt(1 - c * c) - c * np.sqrt(1 - phi[i, j] ** 2)) / (
                        nj * np.sqrt(1 - phi[i, j] ** 2))
                phi[i, j] = (1 - beta) * phi[i, j] + beta * c
            out += gi
    return out


def aligned(G):
    M = G @ G.T
    lam, V = np.linalg.eigh(M)
    keep = lam > lam.max() * len(G) * np.finfo(np.float32).eps
    lam, V = lam[keep], V[:, keep]
    if len(lam) == 0:
        return np.zeros(G.shape[1])
    B = np.sqrt(lam.min()) * V @ np.diag(1 / np.sqrt(lam)) @ V.T
    return B.sum(0) @ G


def config(G):
    live = [t for t in range(len(G)) if np.linalg.norm(G[t]) > 0]
    if not live:
        return np.zeros(G.shape[1])
    U = G[live] / np.linalg.norm(G[live], axis=1)[:, None]
    x = np.linalg.pinv(U) @ np.ones(len(live))
    if np.linalg.norm(x) == 0:
        return np.zeros(G.shape[1])
    v = x / np.linalg.norm(x)
    return (G @ v).sum() * v


def db_mtl(G, L, steps, beta=0.9, beta_sigma=0.5):
    h = np.zeros_like(G)
    g = G / (L + 1e-8)[:, None]
    for k in range(1, steps + 1):
        h = g + beta / k ** beta_sigma * (h - g)
    n = np.linalg.norm(h, axis=1)
    return (n.max() / (n + 1e-8)) @ h


def graddrop(G, U, leak):
    s = np.abs(G).sum(0)
    P = np.where(s > 0, 0.5 * (1 + G.sum(0) / np.where(s > 0, s, 1)), 0.5)
    keep = ((P > U)[None, :] & (G > 0)) | ((P < U)[None, :] & (G < 0))
    return ((leak + (1 - leak) * keep) * G).sum(0)


for case, (G, L) in CASES.items():
    row("gradvac_fixed_step1", case, gradvac_fixed(G, 0.01, 1))
    row("gradvac_fixed_beta0.5_step3", case, gradvac_fixed(G, 0.5, 3))
    row("aligned_mtl", case, aligned(G))
    row("config", case, config(G))
    row("db_mtl_step1", case, db_mtl(G, L, 1))
    row("db_mtl_step3", case, db_mtl(G, L, 3))
    U = np.linspace(0.05, 0.95, G.shape[1])  # the same fixed draw in the test
    row("graddrop_leak0", case, graddrop(G, U, 0.0))
    row("graddrop_leak0.3", case, graddrop(G, U, 0.3))

for case, (G, L) in CASES.items():
    for norm in ["loss+", "none", "l2", "loss"]:
        row("mgda_" + norm, case, mgda(G, L, norm))
    row("pcgrad_fixed", case, pcgrad_fixed(G))
    for c in [0.5, 0.0, 0.9]:
        row(f"cagrad_{c}", case, cagrad(G, c))
    row("imtl", case, imtl(G))
    row("nash_mtl", case, nash(G))
    T = len(G)
    if case == "conflict":  # independent rows: the exact primal projections (reg_eps 0)
        row("upgrad_reg0", case, np.mean([project_to_dual_cone(G, G[i]) for i in range(T)], axis=0))
        row("dualproj_reg0", case, project_to_dual_cone(G, G.mean(0)))
    row("upgrad", case, np.mean([box_dual(G, np.eye(T)[i], 1e-4) for i in range(T)], axis=0))
    row("dualproj", case, box_dual(G, np.ones(T) / T, 1e-4))

# GradNorm on the conflict case: L(0) and w given; dL_grad/dw by central differences of
# sum_t |w_t |g_t^W| - target_t| with the target mean_t(w_t |g_t^W|) r_t^alpha held constant.
# W = all columns, or the last layer = columns 2..4 (the test's layout: a.weight 2, b.weight 2, b.bias 1).
G, L = CASES["conflict"]
L0 = np.array([1.5, 2.0, 1.0])
w0 = np.array([1.2, 0.5, 1.3])
for layer, cols in [("all", slice(0, 5)), ("last", slice(2, 5))]:
    for alpha in [1.5, 0.12]:
        n = np.linalg.norm(G[:, cols], axis=1)
        ratio = (L / L0) / np.mean(L / L0)
        target = np.mean(w0 * n) * ratio ** alpha
        h = 1e-7
        grad = [(np.sum(np.abs((w0 + h * e) * n - target)) - np.sum(np.abs((w0 - h * e) * n - target))) / (2 * h)
                for e in np.eye(3)]
        row(f"gradnorm_wgrad_{layer}_{alpha}", "conflict", grad)
row("gradnorm", "conflict", w0 @ G)
