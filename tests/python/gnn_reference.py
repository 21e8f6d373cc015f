"""Numpy reference of the graph layers, written from the PyTorch Geometric documentation
(GCNConv, SAGEConv, GINConv, GATConv with their default options) and weaver-core's
ParticleNet EdgeConvBlock, on explicit edge lists (source j -> target i for every real
neighbour j listed by point i), in float64. Reads the case that tests/it/gnn.rs writes (the
Burn layers' weights and outputs) and checks the outputs agree to 1e-5.

Usage: python3 gnn_reference.py case.json
"""

import json
import sys

import numpy as np

TOL = 1e-5


def linear(p, x):
    """Burn's Linear: weight [in, out], y = x W + b."""
    w = np.asarray(p["w"], dtype=np.float64).reshape(p["shape"])
    y = x @ w
    if p["b"] is not None:
        y = y + np.asarray(p["b"], dtype=np.float64)
    return y


def edges(c):
    """(src, dst) node ids of the real edges, nodes numbered b*R + i."""
    B, R, K = c["B"], c["R"], c["K"]
    idx = np.asarray(c["idx"]).reshape(B, R, K)
    nm = np.asarray(c["nm"]).reshape(B, R, K)
    mask = np.asarray(c["mask"]).reshape(B, R)
    src, dst = [], []
    for b in range(B):
        for i in range(R):
            if not mask[b, i]:
                continue
            for s in range(K):
                if nm[b, i, s]:
                    src.append(b * R + idx[b, i, s])
                    dst.append(b * R + i)
    return np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)


def gcn(x, src, dst, p):
    """GCNConv: add self-loops, deg = in-degree (target side), norm = deg[src]^-1/2 deg[dst]^-1/2,
    x' = scatter_add(norm * (x Θ)[src] -> dst) + b."""
    n = len(x)
    loops = np.arange(n)
    s, d = np.concatenate([src, loops]), np.concatenate([dst, loops])
    deg = np.bincount(d, minlength=n).astype(np.float64)
    norm = deg[s] ** -0.5 * deg[d] ** -0.5
    h = linear(p["lin"], x)
    out = np.zeros_like(h)
    np.add.at(out, d, norm[:, None] * h[s])
    return out + np.asarray(p["bias"])


def sage(x, src, dst, p):
    """SAGEConv (aggr='mean'): x' = lin_l(mean_j x_j) + lin_r(x_i); no messages -> mean 0."""
    agg = np.zeros_like(x)
    np.add.at(agg, dst, x[src])
    cnt = np.bincount(dst, minlength=len(x)).astype(np.float64)
    agg = agg / np.maximum(cnt, 1)[:, None]
    return linear(p["lin_l"], agg) + linear(p["lin_r"], x)


def gin(x, src, dst, p):
    """GINConv: x' = nn((1 + eps) x_i + sum_j x_j), nn = Linear, ReLU, Linear."""
    s = (1 + p["eps"]) * x
    np.add.at(s, dst, x[src])
    return linear(p["lin2"], np.maximum(linear(p["lin1"], s), 0))


def gat(x, src, dst, p):
    """GATConv (heads, concat=True, add_self_loops=True, negative_slope=0.2):
    alpha_ij = softmax over j in N(i) + {i} of LeakyReLU(a_s . Θx_j + a_d . Θx_i)."""
    n, H, C = len(x), p["heads"], p["C"]
    loops = np.arange(n)
    s, d = np.concatenate([src, loops]), np.concatenate([dst, loops])
    h = linear(p["lin"], x).reshape(n, H, C)
    a_s = (h * np.asarray(p["att_src"]).reshape(1, H, C)).sum(-1)
    a_d = (h * np.asarray(p["att_dst"]).reshape(1, H, C)).sum(-1)
    e = a_s[s] + a_d[d]
    e = np.where(e > 0, e, 0.2 * e)
    emax = np.full((n, H), -np.inf)
    np.maximum.at(emax, d, e)
    w = np.exp(e - emax[d])
    z = np.zeros((n, H))
    np.add.at(z, d, w)
    alpha = w / z[d]
    out = np.zeros((n, H, C))
    np.add.at(out, d, alpha[:, :, None] * h[s])
    return out.reshape(n, H * C) + np.asarray(p["bias"])


def batch_norm_train(y, p):
    """BatchNorm in training mode: batch mean and biased variance over the rows."""
    mu, var = y.mean(0), y.var(0)
    return (y - mu) / np.sqrt(var + p["eps"]) * np.asarray(p["gamma"]) + np.asarray(p["beta"])


def edgeconv(c, p):
    """weaver-core EdgeConvBlock: edge features [x_i, x_j - x_i] for each listed slot (x_j = 0
    for a padding entry), 1x1 conv (no bias) -> BatchNorm (batch statistics over every
    (point, slot) row of the batch, as weaver-core's BatchNorm2d) -> ReLU per width, mean over the real neighbours (0 for none),
    shortcut (1x1 conv + BatchNorm over every point when the width changes), ReLU."""
    B, R, K = c["B"], c["R"], c["K"]
    f = p["F"]
    x = np.asarray(p["x"], dtype=np.float64).reshape(B * R, f)
    idx = np.asarray(c["idx"]).reshape(B, R, K) + (np.arange(B) * R)[:, None, None]
    nm = np.asarray(c["nm"]).reshape(B * R, K) * np.asarray(c["mask"]).reshape(B * R, 1)
    xi = np.repeat(x[:, None, :], K, axis=1)
    # A padding entry is a zero neighbour (weaver-core: a padded particle, features 0).
    x_ext = np.vstack([x, np.zeros((1, f))])
    xj = x_ext[np.where(nm > 0, idx.reshape(B * R, K), B * R)]
    e = np.concatenate([xi, xj - xi], axis=2).reshape(B * R * K, 2 * f)
    for conv, bn in zip(p["convs"], p["bns"]):
        e = np.maximum(batch_norm_train(linear(conv, e), bn), 0)
    e = e.reshape(B * R, K, -1)
    fts = (e * nm[:, :, None]).sum(1) / np.maximum(nm.sum(1), 1)[:, None]
    if p["shortcut"] is not None:
        sc = batch_norm_train(linear(p["shortcut"]["lin"], x), p["shortcut"]["bn"])
    else:
        sc = x
    return np.maximum(sc + fts, 0)


def main():
    c = json.load(open(sys.argv[1]))
    B, R, F = c["B"], c["R"], c["F"]
    x = np.asarray(c["x"], dtype=np.float64).reshape(B * R, F)
    keep = np.asarray(c["mask"], dtype=np.float64).reshape(B * R, 1)
    src, dst = edges(c)
    # The case must hold real points with 0 < degree < K (a short jet) and with degree 0.
    deg = np.bincount(dst, minlength=B * R)[keep[:, 0] > 0]
    assert ((deg > 0) & (deg < c["K"])).any() and (deg == 0).any(), "the case has no short jets"
    failed = False
    layers = {
        "gcn": lambda: gcn(x, src, dst, c["gcn"]),
        "sage": lambda: sage(x, src, dst, c["sage"]),
        "gcn_narrowing": lambda: gcn(x, src, dst, c["gcn_narrowing"]),
        "sage_narrowing": lambda: sage(x, src, dst, c["sage_narrowing"]),
        "gin": lambda: gin(x, src, dst, c["gin"]),
        "gat": lambda: gat(x, src, dst, c["gat"]),
        "edgeconv": lambda: edgeconv(c, c["edgeconv"]),
        "edgeconv_same_width": lambda: edgeconv(c, c["edgeconv_same_width"]),
    }
    for name, f in layers.items():
        want = f() * keep  # padding points' outputs are zero
        got = np.asarray(c[name]["out"], dtype=np.float64).reshape(want.shape)
        err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
        status = "ok" if err <= TOL else "FAILED"
        failed |= err > TOL
        print(f"{name}: {status} (max relative difference {err:.2e}, |out| max {np.abs(want).max():.3f})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
