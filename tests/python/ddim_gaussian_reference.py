"""DDIM (eta = 0) with the analytic noise predictor of Gaussian data N(1.5, 0.5^2), linear
schedule, T = 1000: the spread of the samples narrows with few steps. This is the numpy
reference behind the step count of `ancestral_sampling_reproduces_a_gaussian` in
src/train/nn/diffusion.rs (same step rule: t_i = round((from + 1)(1 - i/n)) - 1).

    python3 tests/python/ddim_gaussian_reference.py   # needs numpy
"""
import numpy as np

T = 1000
beta = np.linspace(1e-4, 0.02, T)
ab = np.cumprod(1 - beta)
mu, sd = 1.5, 0.5


def eps(x, t):
    a = ab[t]
    return (x - np.sqrt(a) * mu) * np.sqrt(1 - a) / (a * sd * sd + 1 - a)


def steps(frm, n):
    return sorted({int(round((frm + 1) * (1 - i / n))) - 1 for i in range(n)}, reverse=True)


x0 = np.random.default_rng(0).standard_normal(100_000)
for n in [20, 50, 200, 1000]:
    x, ts = x0.copy(), steps(T - 1, n)
    for i, t in enumerate(ts):
        a, a2 = ab[t], (ab[ts[i + 1]] if i + 1 < len(ts) else 1.0)
        e = eps(x, t)
        x = np.sqrt(a2) * (x - np.sqrt(1 - a) * e) / np.sqrt(a) + np.sqrt(1 - a2) * e
    print(f"{n:5d} steps: mean {x.mean():.4f} sd {x.std():.4f}")
