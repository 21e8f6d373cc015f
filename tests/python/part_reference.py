"""numpy reference of the Particle Transformer's forward pass (evaluation mode), written from
weaver-core's ParticleTransformer.py (2022, the paper's code) to check
src/train/models/part.rs (its test `forward_matches_the_numpy_reference`).

usage: part_reference.py CASE.json   (weights, points, mask and the Rust logits)

Differences the reference allows and the Rust model takes: the head is Linear(d, 1); padding
is a key mask; the per-head scale multiplies channels in (head, dim) order.
"""

import json
import sys
from math import erf, pi, sqrt

import numpy as np

EPS_NORM = 1e-5
EPS_LOG = 1e-8


def a(x):
    return np.asarray(x["data"], dtype=np.float64).reshape(x["shape"])


def batch_norm(x, p):  # x [..., C], evaluation mode: running statistics
    return (x - a(p["mean"])) / np.sqrt(a(p["var"]) + EPS_NORM) * a(p["gamma"]) + a(p["beta"])


def layer_norm(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS_NORM) * a(p["gamma"]) + a(p["beta"])


def linear(x, p):  # Burn stores W as [in, out]
    return x @ a(p["w"]) + a(p["b"])


gelu = np.vectorize(lambda v: 0.5 * v * (1.0 + erf(v / sqrt(2.0))))


def pair_features(pt, eta, phi):
    """[R, R, 4]: ln kT, ln z, ln ΔR, ln m² for every ordered pair (massless particles)."""
    # pairwise_lv_fts on 4-vectors: px, py, pz, E of massless particles.
    px, py, pz, e = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)
    rap = 0.5 * np.log(np.clip(1 + 2 * pz / np.clip(e - pz, 1e-20, None), 1e-300, None))
    rap = np.where(pt > 0, rap, eta)  # a zero vector has no rapidity: padding only
    dphi = (phi[:, None] - phi[None, :] + pi) % (2 * pi) - pi
    delta = np.sqrt((rap[:, None] - rap[None, :]) ** 2 + dphi**2)
    ptmin = np.minimum(pt[:, None], pt[None, :])
    lnkt = np.log(np.clip(ptmin * delta, EPS_LOG, None))
    lnz = np.log(np.clip(ptmin / np.clip(pt[:, None] + pt[None, :], EPS_LOG, None), EPS_LOG, None))
    lndelta = np.log(np.clip(delta, EPS_LOG, None))
    m2 = (e[:, None] + e[None, :]) ** 2 - (
        (px[:, None] + px[None, :]) ** 2 + (py[:, None] + py[None, :]) ** 2 + (pz[:, None] + pz[None, :]) ** 2
    )
    lnm2 = np.log(np.clip(m2, EPS_LOG, None))
    return np.stack([lnkt, lnz, lndelta, lnm2], -1)


def attention(q_in, kv, p, heads, bias, keys):
    """nn.MultiheadAttention with an additive float mask [H, Nq, N] and a key padding mask."""
    q, k, v = linear(q_in, p["q"]), linear(kv, p["k"]), linear(kv, p["v"])
    d = q.shape[-1]
    dh = d // heads
    out = np.zeros_like(q)
    for h in range(heads):
        s = slice(h * dh, (h + 1) * dh)
        logits = q[:, s] @ k[:, s].T / sqrt(dh)
        if bias is not None:
            logits = logits + bias[h]
        logits = np.where(keys[None, :], logits, -np.inf)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w = w / w.sum(-1, keepdims=True)
        out[:, s] = w @ v[:, s]
    return linear(out, p["out"])


def block(x, p, heads, bias, keys, x_cls=None):
    if x_cls is None:
        residual = x
        xn = layer_norm(x, p["pre_attn_norm"])
        h = attention(xn, xn, p, heads, bias, keys)
    else:
        residual = x_cls
        u = layer_norm(np.concatenate([x_cls, x], 0), p["pre_attn_norm"])
        h = attention(x_cls, u, p, heads, None, np.concatenate([[True], keys]))
    n, d = h.shape
    h = (h.reshape(n, heads, d // heads) * a(p["c_attn"])[None, :, None]).reshape(n, d)
    h = layer_norm(h, p["post_attn_norm"]) + residual
    residual = h
    z = gelu(linear(layer_norm(h, p["pre_fc_norm"]), p["fc1"]))
    z = linear(layer_norm(z, p["post_fc_norm"]), p["fc2"])
    return z + a(p["w_resid"]) * residual


def forward(case):
    w, heads = case["weights"], case["heads"]
    pts, mask = a(case["points"]), a(case["mask"]) > 0.5
    logits = []
    for x_in, keys in zip(pts, mask):
        x = batch_norm(x_in, w["input_bn"])
        for ln, lin in zip(w["embed_norms"], w["embed"]):
            x = gelu(linear(layer_norm(x, ln), lin))
        x = x * keys[:, None]
        pt = sum(x_in[:, i] for i in case["energy"])
        f = pair_features(pt, x_in[:, case["eta"]], x_in[:, case["phi"]])
        y = batch_norm(f, w["pairs"]["input_bn"])
        for lin, bn in zip(w["pairs"]["layers"], w["pairs"]["bns"]):
            y = gelu(batch_norm(linear(y, lin), bn))
        bias = y.transpose(2, 0, 1)  # [H, R, R]
        for p in w["blocks"]:
            x = block(x, p, heads, bias, keys)
        c = a(w["cls"]).reshape(1, -1)
        for p in w["cls_blocks"]:
            c = block(x, p, heads, None, keys, x_cls=c)
        logits.append(linear(layer_norm(c, w["norm"]), w["head"])[0, 0])
    return np.array(logits)


if __name__ == "__main__":
    case = json.load(open(sys.argv[1]))
    want = forward(case)
    got = np.asarray(case["logits"], dtype=np.float64)
    diff = np.abs(got - want).max()
    print(f"ParT logits: Rust {np.round(got, 5).tolist()}, numpy {np.round(want, 5).tolist()}, max |diff| {diff:.2e}")
    assert diff < 1e-5 * max(1.0, np.abs(want).max()), "ParT forward disagrees with the numpy reference"
