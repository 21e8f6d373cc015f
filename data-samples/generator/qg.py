"""Quark/gluon mode: Pythia blocks -> toy-detector images -> one HDF5 file.

Reproducibility contract: for a given (seed, n, block size, physics and
detector options, package versions) the output is byte-identical whatever
--workers is.  Jets are produced in blocks of ``block_size`` accepted jets per
class; block b of class c is seeded from (seed, c, b) only (Pythia seed and a
separate numpy stream for the detector).  Blocks are assembled in order
(quarks 0..N/2-1, gluons N/2..N-1), then one permutation drawn from
(seed, shuffle) places every jet at its final index.  Jets are written to the
file as their blocks arrive (in block order), so memory stays bounded by a
few blocks.
"""
from __future__ import annotations

import csv
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass

import numpy as np

import detector
import h5io
import physics

SHUFFLE_STREAM = 2


@dataclass(frozen=True)
class BlockTask:
    seed: int
    label: int
    block: int
    n: int
    phys: physics.PhysicsConfig
    det: detector.DetectorConfig


def run_block(task: BlockTask):
    events, tried = physics.generate_block(task.phys, task.label, task.n, task.seed, task.block)
    rng = np.random.default_rng(physics.block_seed(task.seed, 1, task.label, task.block))
    images = np.stack([detector.make_image(ev, rng, task.det) for ev in events])
    meta = [(ev.pt, ev.eta, ev.phi, ev.mass, ev.n_constituents, ev.n_charged, ev.girth)
            for ev in events]
    return task.label, task.block, images, meta, tried


def make_tasks(seed, n, block_size, phys, det):
    if n <= 0 or n % 2:
        raise SystemExit("--n must be a positive even number (classes are exactly balanced)")
    half = n // 2
    nblocks = -(-half // block_size)
    tasks = []
    for b in range(nblocks):  # interleave classes so both progress together
        size = min(block_size, half - b * block_size)
        for label in (physics.QUARK, physics.GLUON):
            tasks.append(BlockTask(seed, label, b, size, phys, det))
    return tasks


def shuffle_order(seed: int, n: int) -> np.ndarray:
    """order[i] = unshuffled index of the jet stored at final index i."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SHUFFLE_STREAM,)))
    return rng.permutation(n)


def generate(out, n, seed, block_size, workers, level, phys, det, meta_path=None, log=sys.stderr):
    tasks = make_tasks(seed, n, block_size, phys, det)
    half = n // 2
    order = shuffle_order(seed, n)
    dest = np.empty(n, dtype=np.int64)
    dest[order] = np.arange(n)
    m0 = np.zeros(n, np.float32)
    pt = np.zeros(n, np.float32)
    y = np.zeros(n, np.float32)
    meta = [None] * n
    t0 = time.time()
    tried_total = {physics.QUARK: 0, physics.GLUON: 0}
    with h5io.open_new(out) as f:
        xd = h5io.create_qg(f, n, level)
        if workers > 1:
            pool = mp.get_context("fork").Pool(workers)
            results = pool.imap(run_block, tasks, chunksize=1)
        else:
            pool = None
            results = map(run_block, tasks)
        done = 0
        try:
            for label, block, images, bmeta, tried in results:
                tried_total[label] += tried
                base = (0 if label == physics.QUARK else half) + block * block_size
                for k in range(images.shape[0]):
                    d = int(dest[base + k])
                    xd[d] = images[k]
                    m0[d], pt[d], y[d] = bmeta[k][3], bmeta[k][0], float(label)
                    meta[d] = (d, label) + bmeta[k]
                done += images.shape[0]
                rate = done / max(time.time() - t0, 1e-9)
                print(f"  {done}/{n} jets  ({rate:.1f} jets/s)", file=log, flush=True)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        h5io.write_qg_vectors(f, m0, pt, y)
    elapsed = time.time() - t0
    if meta_path:
        write_meta(meta_path, meta)
    eff = {("quark" if k == physics.QUARK else "gluon"): half / max(v, 1) for k, v in tried_total.items()}
    print(f"wrote {out}: {n} jets in {elapsed:.1f} s ({n / elapsed:.2f} jets/s, "
          f"{workers} worker(s)); acceptance quark {eff['quark']:.3f} gluon {eff['gluon']:.3f}",
          file=log)
    return elapsed


def write_meta(path, meta):
    """Per-jet truth sidecar (not part of the E2E schema): one row per final index."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["index", "y", "pt", "eta", "phi", "m0", "n_constituents", "n_charged", "girth"])
        for d, label, jpt, eta, phi, mass, nc, nch, g in meta:
            w.writerow([d, label, f"{jpt:.4f}", f"{eta:.5f}", f"{phi:.5f}", f"{mass:.4f}", nc, nch, f"{g:.5f}"])
