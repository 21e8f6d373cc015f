#!/usr/bin/env python3
"""Statistics and sanity checks of the committed sample files (markdown output).

    python generator/stats.py [--dir data-samples] [--rate N]

Prints, for each qg file: schema (shapes, dtypes, chunks, compression),
label balance, pT window, non-negative/finite pixels, HCAL 5x5 equality,
quark-vs-gluon table (non-zero pixels per channel and in the union, in the
whole image and within the jet cone ΔR < 0.4,
constituent multiplicity and girth from the *_truth.csv sidecar, image
width, pT and mass means); the same kind of summary for egamma_sample.h5;
file sizes and sha256.  --rate N additionally times the generation of N
quark/gluon jets with one worker (into a temporary file) and reports jets/s.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for blk in iter(lambda: fh.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def schema(f):
    rows = []
    for k in f:
        d = f[k]
        rows.append(f"| {k} | {d.dtype} | {d.shape} | {d.chunks} | {d.compression} {d.compression_opts or ''} |")
    return "| dataset | dtype | shape | chunks | compression |\n|---|---|---|---|---|\n" + "\n".join(rows)


CONE = 0.4 / 0.0174  # jet radius in pixels (23 pixels)


def _radius(n):
    c = (n - 1) / 2.0 if n % 2 == 0 else n // 2
    return np.hypot(*np.meshgrid(np.arange(n) - c, np.arange(n) - c, indexing="ij"))


def image_width(X, rmax=None):
    """Intensity-weighted mean distance (pixels) from the image centre, channels summed;
    only pixels with r < rmax when given."""
    r = _radius(X.shape[1])
    s = X.sum(axis=-1)
    if rmax is not None:
        s = s * (r < rmax)
    return (s * r).sum(axis=(1, 2)) / np.maximum(s.sum(axis=(1, 2)), 1e-12)


def ms(a):
    return f"{np.mean(a):.2f} ± {np.std(a):.2f}"


def qg_stats(path):
    out = [f"### {os.path.basename(path)}", ""]
    with h5py.File(path, "r") as f:
        out += [schema(f), ""]
        y, pt, m0 = f["y"][:], f["pt"][:], f["m0"][:]
        n = len(y)
        nz = np.zeros((n, 4), np.int64)
        nz_cone = np.zeros((n, 4), np.int64)
        width = np.zeros(n)
        width_cone = np.zeros(n)
        in_cone = _radius(125) < CONE
        hcal_ok = True
        neg = nan = 0
        for s in range(0, n, 250):
            X = f["X_jets"][s:s + 250]
            neg += int((X < 0).sum())
            nan += int((~np.isfinite(X)).sum())
            nzc = X != 0
            nz[s:s + 250, :3] = nzc.sum(axis=(1, 2))
            nz[s:s + 250, 3] = nzc.any(axis=-1).sum(axis=(1, 2))
            H = X[..., 2].reshape(len(X), 25, 5, 25, 5)
            hcal_ok &= bool(np.all(H == H[:, :, :1, :, :1]))
            width[s:s + 250] = image_width(X)
            width_cone[s:s + 250] = image_width(X, CONE)
            nzc = nzc & in_cone[None, :, :, None]
            nz_cone[s:s + 250, :3] = nzc.sum(axis=(1, 2))
            nz_cone[s:s + 250, 3] = nzc.any(axis=-1).sum(axis=(1, 2))
    npx = 125 * 125
    out.append(f"- jets: {n}; y=1 (quark): {int((y == 1).sum())}, y=0 (gluon): {int((y == 0).sum())}")
    out.append(f"- pt range [{pt.min():.1f}, {pt.max():.1f}] GeV, mean {pt.mean():.1f}; m0 mean {m0.mean():.2f} GeV")
    out.append(f"- negative pixels: {neg}, non-finite pixels: {nan}; HCAL pixels in equal 5x5 blocks: {hcal_ok}")
    out.append(f"- zero pixels: {100 * (1 - nz[:, :3].sum() / (3 * npx * n)):.2f} % of all values; "
               f"union non-zero {100 * nz[:, 3].mean() / npx:.2f} % of pixels")
    truth = {}
    tpath = path[:-3] + "_truth.csv"
    if os.path.exists(tpath):
        with open(tpath) as fh:
            for row in csv.DictReader(fh):
                truth[int(row["index"])] = row
    cols = ["quantity", "quark (y=1)", "gluon (y=0)", "gluon/quark"]
    lines = ["| " + " | ".join(cols) + " |", "|---|---|---|---|"]

    def add(name, vals, fmt=ms):
        q, g = vals[y == 1], vals[y == 0]
        lines.append(f"| {name} | {fmt(q)} | {fmt(g)} | {np.mean(g) / np.mean(q):.2f} |")

    for i, ch in enumerate(["Tracks", "ECAL", "HCAL", "union"]):
        add(f"non-zero pixels {ch}", nz[:, i].astype(float))
    for i, ch in enumerate(["Tracks", "ECAL", "HCAL", "union"]):
        add(f"non-zero pixels {ch}, ΔR < 0.4", nz_cone[:, i].astype(float))
    if truth:
        idx = np.arange(n)
        add("constituents (truth)", np.array([float(truth[i]["n_constituents"]) for i in idx]))
        add("charged constituents (truth)", np.array([float(truth[i]["n_charged"]) for i in idx]))
        add("girth Σ pT·ΔR / pT (truth)", np.array([float(truth[i]["girth"]) for i in idx]),
            lambda a: f"{np.mean(a):.4f} ± {np.std(a):.4f}")
    add("image width ⟨r⟩ (pixels, all channels, whole image)", width)
    add("image width ⟨r⟩ (pixels, all channels, ΔR < 0.4)", width_cone)
    add("jet pT (GeV)", pt.astype(float))
    add("jet mass m0 (GeV)", m0.astype(float))
    out += ["", *lines, ""]
    return "\n".join(out)


def egamma_stats(path):
    out = [f"### {os.path.basename(path)}", ""]
    with h5py.File(path, "r") as f:
        out += [schema(f), ""]
        X, y = f["X"][:], f["y"][:]
    E, T = X[..., 0], X[..., 1]
    out.append(f"- showers: {len(y)}; y=1 (electron): {int((y == 1).sum())}, y=0 (photon): {int((y == 0).sum())}")
    out.append(f"- negative energies: {int((E < 0).sum())}; non-zero time where energy is 0: "
               f"{int(((E == 0) & (T != 0)).sum())}; zero pixels (energy): {100 * (E == 0).mean():.2f} %")
    lines = ["| quantity | electron (y=1) | photon (y=0) |", "|---|---|---|"]
    c = np.arange(32) - 16
    phiw = np.sqrt((E.sum(axis=1) * c ** 2).sum(-1) / E.sum(axis=(1, 2)))
    etaw = np.sqrt((E.sum(axis=2) * c ** 2).sum(-1) / E.sum(axis=(1, 2)))
    for name, v in [("total energy (GeV)", E.sum(axis=(1, 2))), ("non-zero pixels", (E > 0).sum(axis=(1, 2))),
                    ("E(max crystal)/E(total)", E.max(axis=(1, 2)) / E.sum(axis=(1, 2))),
                    ("RMS width along φ (crystals)", phiw), ("RMS width along η (crystals)", etaw)]:
        lines.append(f"| {name} | {ms(v[y == 1])} | {ms(v[y == 0])} |")
    tt = [f"{np.std(T[(y == lab)[:, None, None] & (E > 0)]):.2f}" for lab in (1, 0)]
    lines.append(f"| time spread of hit pixels (ns, std) | {tt[0]} | {tt[1]} |")
    return "\n".join(out + ["", *lines, ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.dirname(HERE), help="folder with the sample files")
    ap.add_argument("--rate", type=int, default=0, help="also time generating this many qg jets (0 = skip)")
    a = ap.parse_args()
    print("## Files\n\n| file | bytes | sha256 |\n|---|---|---|")
    names = ["qg_sample.h5", "qg_sample_truth.csv", "qg_tiny.h5", "qg_tiny_truth.csv", "egamma_sample.h5"]
    for nm in names:
        p = os.path.join(a.dir, nm)
        if os.path.exists(p):
            print(f"| {nm} | {os.path.getsize(p)} | `{sha256(p)}` |")
    print()
    for nm in ["qg_sample.h5", "qg_tiny.h5"]:
        p = os.path.join(a.dir, nm)
        if os.path.exists(p):
            print(qg_stats(p))
    p = os.path.join(a.dir, "egamma_sample.h5")
    if os.path.exists(p):
        print(egamma_stats(p))
    if a.rate:
        with tempfile.TemporaryDirectory() as td:
            t0 = time.time()
            subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "qg", "--n", str(a.rate),
                            "--seed", "99", "--meta", "none", "--out", os.path.join(td, "r.h5")],
                           check=True, stderr=subprocess.DEVNULL)
            dt = time.time() - t0
        print(f"## Generation rate\n\n{a.rate} jets (1 worker, incl. start-up) in {dt:.1f} s: "
              f"**{a.rate / dt:.1f} jets/s** on this machine ({os.cpu_count()} cores)\n")


if __name__ == "__main__":
    main()
