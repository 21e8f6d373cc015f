"""Checks python/jetpipe_reader.py against batches the Rust loader dumped (tests/it/python.rs).

usage: loader_check.py DATASET DUMP_DIR

DUMP_DIR holds, for the sequential read (res 1024, features tracks ecal hcal eta phi, batch 16):
sizes.u64 and the concatenated points.f32 mask.u8 labels.i8 jet_ids.u64 n_points.u16
neighbours.u16 knn_k.u16; ranks2_0.u64 / ranks2_1.u64: jet ids of world_size 2 ranks
(drop_last false, batch 16); train.u64: jet ids of the train split (train 0.7, val 0.2, seed 4).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import jetpipe_reader as jr  # noqa: E402

dataset, dump = sys.argv[1], sys.argv[2]
R, F, B = 1024, 5, 16


def load(name, dtype):
    return np.fromfile(os.path.join(dump, name), dtype=dtype)


# Pinned values shared with the Rust unit tests (plan.rs).
assert int(jr.mix64(np.uint64(1))) == 0x5692161D100B05E5
assert int(jr.mix64(np.uint64(0))) == 0

reader = jr.JetpipeReader(dataset, R, batch_size=B)
sizes = load("sizes.u64", np.uint64).astype(int)
assert [b - a for a, b in reader.batches] == list(sizes), "batch sizes differ"
got = list(reader.read_all())
assert len(got) == len(sizes)
k = reader.k
assert k == 16, k
want = {
    "points": load("points.f32", np.float32),
    "mask": load("mask.u8", np.uint8),
    "labels": load("labels.i8", np.int8),
    "jet_ids": load("jet_ids.u64", np.uint64),
    "n_points": load("n_points.u16", np.uint16),
    "neighbours": load("neighbours.u16", np.uint16),
    "knn_k": load("knn_k.u16", np.uint16),
}
for name, flat in want.items():
    mine = np.concatenate([g[name].reshape(-1) for g in got])
    assert mine.dtype == flat.dtype, (name, mine.dtype, flat.dtype)
    assert mine.shape == flat.shape, (name, mine.shape, flat.shape)
    assert np.array_equal(mine, flat), f"{name} differs at {np.flatnonzero(mine != flat)[:5]}"
# Batch-by-batch reads give the same as the one-pass read.
b3 = reader.batch(3)
assert all(np.array_equal(b3[n], got[3][n]) for n in b3)
# The derived point_index feature: 0 … n−1 on real points, 0 on padding; eta as above.
pi = next(jr.JetpipeReader(dataset, R, features=["point_index", "eta"], batch_size=B).read_all())
ar = np.arange(R, dtype=np.float32)[None, :] * got[0]["mask"]
assert np.array_equal(pi["points"][..., 0], ar), "point_index differs"
assert np.array_equal(pi["points"][..., 1], got[0]["points"][..., 3]), "eta differs"
n_padded = int((want["n_points"] < R).sum())
print(f"loader_check: {len(got)} batches, {len(want['jet_ids'])} jets ({n_padded} padded) equal")

for rank in range(2):
    r = jr.JetpipeReader(dataset, R, batch_size=B, world_size=2, rank=rank, neighbours=False)
    ids = np.concatenate([g["jet_ids"] for g in r.read_all()])
    assert np.array_equal(ids, load(f"ranks2_{rank}.u64", np.uint64)), f"rank {rank} differs"
    assert "neighbours" not in r.batch(0)

split = {"subset": "train", "train": 0.7, "val": 0.2, "seed": 4}
r = jr.JetpipeReader(dataset, R, batch_size=B, split=split)
ids = np.concatenate([g["jet_ids"] for g in r.read_all()])
assert np.array_equal(ids, load("train.u64", np.uint64)), "train split differs"
print(f"loader_check: ranks of world 2 and the train split ({len(ids)} jets) equal")

# edge_index: every real neighbour pair, numbered over real points, checked by brute force.
g = got[0]
ei = jr.edge_index(g)
edges = set(map(tuple, ei.T.tolist()))
expect = set()
off = 0
for b in range(len(g["jet_ids"])):
    n, kk = int(g["n_points"][b]), int(g["knn_k"][b])
    for p in range(n):
        for j in range(kk):
            expect.add((off + int(g["neighbours"][b, p, j]), off + p))
    off += n
assert edges == expect and ei.shape[1] == len(expect)
print(f"loader_check: edge_index of batch 0 has {ei.shape[1]} edges, as expected")
