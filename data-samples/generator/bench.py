"""bench mode: a large quark/gluon file (e.g. the real file's 139306 jets) without Pythia.

Output jets are drawn with replacement from an existing qg file (normally the
committed qg_sample.h5) and each is reflected at random: identity, eta flip
(rows reversed), phi flip (columns reversed) or both.  m0 and pt are unchanged
by reflections; y is copied.  The HCAL 5x5 tower grid stays aligned under
every reflection because 125 = 25 towers x 5 pixels (tower k maps to tower
24 - k).  Labels are exactly balanced (an even --n gives N/2 of each class;
an odd one gives one extra gluon), placed by a seeded permutation.

Same schema, chunking (1, 125, 125, 3) and gzip as the qg mode.  To stay fast
and memory-flat, the 4 reflected variants of every source jet are compressed
once by HDF5 itself (in an in-memory HDF5 file, same filter and level), and
the output is streamed block by block with write_direct_chunk: memory ~ 4 x
compressed source size + 12 bytes per output jet; 139306 jets from
qg_sample.h5 take ~8 s and ~430 MB on disk.
"""
from __future__ import annotations

import sys
import time

import h5py
import numpy as np

import h5io


def _variants(img: np.ndarray):
    return (img, img[::-1, :, :], img[:, ::-1, :], img[::-1, ::-1, :])


def _compressed_variants(src: h5py.Dataset, level: int, batch: int = 128):
    """list over source jets of 4 raw chunk byte strings (identity, eta, phi, both)."""
    n = src.shape[0]
    out = []
    for start in range(0, n, batch):
        imgs = src[start:start + batch]
        with h5py.File(f"bench-scratch-{start}", "w", driver="core", backing_store=False) as mem:
            d = h5io.image_dataset(mem, "X", (4 * len(imgs),) + imgs.shape[1:], level)
            for k, img in enumerate(imgs):
                for v, var in enumerate(_variants(img)):
                    d[4 * k + v] = np.ascontiguousarray(var)
            for k in range(len(imgs)):
                out.append(tuple(d.id.read_direct_chunk((4 * k + v, 0, 0, 0))[1] for v in range(4)))
    return out


def generate(inp: str, out: str, n: int, seed: int, level: int, block: int, log=sys.stderr) -> None:
    t0 = time.time()
    with h5py.File(inp, "r") as fin:
        src = fin["X_jets"]
        m0_in, pt_in, y_in = fin["m0"][:], fin["pt"][:], fin["y"][:]
        chunks = _compressed_variants(src, level)
    classes = np.unique(y_in)
    if len(classes) != 2:
        raise SystemExit(f"{inp}: expected two label values, found {classes}")
    lo, hi = classes
    pools = {lo: np.flatnonzero(y_in == lo), hi: np.flatnonzero(y_in == hi)}
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    labels = np.where(np.arange(n) < n // 2, hi, lo)
    labels = labels[rng.permutation(n)]
    m0 = np.empty(n, np.float32)
    pt = np.empty(n, np.float32)
    y = np.empty(n, np.float32)
    print(f"compressed {len(chunks)} x 4 source variants in {time.time() - t0:.1f} s", file=log)
    with h5io.open_new(out) as f:
        xd = h5io.create_qg(f, n, level)
        for b, start in enumerate(range(0, n, block)):
            stop = min(start + block, n)
            brng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, b)))
            u = brng.random(stop - start)
            flips = brng.integers(0, 4, stop - start)
            for k, i in enumerate(range(start, stop)):
                pool = pools[labels[i]]
                s = int(pool[min(int(u[k] * len(pool)), len(pool) - 1)])
                xd.id.write_direct_chunk((i, 0, 0, 0), chunks[s][int(flips[k])], filter_mask=0)
                m0[i], pt[i], y[i] = m0_in[s], pt_in[s], y_in[s]
            el = time.time() - t0
            print(f"  {stop}/{n} jets ({stop / el:.0f} jets/s)", file=log, flush=True)
        h5io.write_qg_vectors(f, m0, pt, y)
    print(f"wrote {out}: {n} jets in {time.time() - t0:.1f} s", file=log)
