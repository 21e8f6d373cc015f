"""Independent check of a jetpipe dataset against its HDF5 source, in numpy.

Usage: python3 reference_check.py SOURCE.h5 DATASET_DIR

Re-implements the point-cloud rule with h5py + numpy, taking every setting from the
manifest's resolved config (dataset names, layout, threshold, rank_by, rank_channels):
a pixel is a point when any channel > threshold; float32 scores (Σv² or Σv over the rank
channels, accumulated in channel order); order by score descending, then jetpipe's tie
key (a uint32 hash of the pixel index and hit count), then pixel index; keep the top R.
Compares every stored point, coordinate and channel value, the kNN lists (exact pixel distances, ties by index, padding) and graph statistics, and the jets
table, read with pyarrow. Exits non-zero on any difference.
"""
import json
import sys

import h5py
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from tie_key import tie_key


def check_knn(knn: dict, t: dict, j: int, rows: np.ndarray, cols: np.ndarray) -> None:
    """Brute-force kNN on the pixel grid (exact integer distances, ties by index) and the
    symmetrised graph's components and degrees, compared with the stored columns."""
    assert sorted(knn["coordinates"]) == ["eta", "phi"] and not knn["scales"], "grid coordinates only"
    k, loop = knn["k"], knn["include_self"]
    n = len(rows)
    k_eff = max(min(k, n - 1 + int(loop)), 0)
    assert t["knn_k"][j] == k_eff, (j, t["knn_k"][j], k_eff)
    got = np.asarray(t["knn"][j], np.int64).reshape(n, k) if n else np.zeros((0, k), np.int64)
    d2 = (rows[:, None].astype(np.int64) - rows[None, :]) ** 2 + (cols[:, None].astype(np.int64) - cols[None, :]) ** 2
    idx = np.arange(n)
    adj = [set() for _ in range(n)]
    for i in range(n):
        cand = idx if loop else idx[idx != i]
        order = np.lexsort((cand, d2[i, cand]))
        want = cand[order][:k_eff]
        np.testing.assert_array_equal(got[i, :k_eff], want, err_msg=f"knn of jet {j} point {i}")
        assert (got[i, k_eff:] == i).all(), "padding is the point's own index"
        for nb in want:
            if nb != i:
                adj[i].add(int(nb))
                adj[int(nb)].add(i)
    seen, sizes = set(), []
    for s0 in range(n):
        if s0 in seen:
            continue
        stack, size = [s0], 0
        seen.add(s0)
        while stack:
            u = stack.pop()
            size += 1
            for v in adj[u] - seen:
                seen.add(v)
                stack.append(v)
        sizes.append(size)
    deg = [len(a) for a in adj]
    assert t["n_components"][j] == len(sizes), (j, t["n_components"][j], len(sizes))
    assert t["largest_component"][j] == (max(sizes) if sizes else 0)
    assert t["max_degree"][j] == (max(deg) if deg else 0)
    assert abs(t["mean_degree"][j] - (sum(deg) / n if n else 0.0)) < 1e-5


def main(h5path: str, outdir: str) -> None:
    manifest = json.load(open(f"{outdir}/manifest.json"))
    assert manifest["status"] == "complete", manifest["status"]
    cfg = manifest["config"]
    pc = cfg["stages"]["pointcloud"]
    channels = cfg["source"]["channels"]
    names = cfg["source"]["datasets"]
    pixel = np.float32(pc["pixel_size"])
    assert pc["row_axis"] == "eta"
    with h5py.File(h5path, "r") as f:
        X = f[names["images"]][:].astype(np.float32)
        y = f[names["label"]][:] if names["label"] else None
        pt = f[names["pt"]][:] if names["pt"] else None
    if cfg["source"]["layout"] == "nchw":
        X = X.transpose(0, 2, 3, 1)
    n, h, w, c = X.shape
    flat = X.reshape(n, h * w, c)
    ranked = pc["rank_channels"] or channels
    score = np.zeros((n, h * w), np.float32)
    for ch, name in enumerate(channels):
        if name in ranked:
            v = flat[:, :, ch]
            score = score + (v * v if pc["rank_by"] == "sum_sq" else v)
    hit = (flat > np.float32(pc["threshold"])).any(axis=2)

    jets = pq.read_table(f"{outdir}/jets").sort_by("jet_id")
    assert jets.num_rows == n, (jets.num_rows, n)
    if y is not None:
        np.testing.assert_array_equal(jets["label"].to_numpy(), y.astype(np.int8))
    if pt is not None:
        np.testing.assert_array_equal(jets["pt"].to_numpy(), pt)
    np.testing.assert_array_equal(jets["n_hits"].to_numpy(), hit.sum(axis=1))
    for ch, name in enumerate(channels):
        np.testing.assert_allclose(jets[f"sum_{name}"].to_numpy(), flat[:, :, ch].sum(axis=1), rtol=1e-5)

    # The whole points table through Hive partitioning, as DataFusion/polars/DuckDB see it.
    points = pads.dataset(f"{outdir}/points", format="parquet", partitioning="hive").to_table()
    assert sorted(set(points["res"].to_pylist())) == sorted(pc["resolutions"])
    checked = 0
    for R in pc["resolutions"]:
        t = pq.read_table(f"{outdir}/points/res={R}").sort_by("jet_id").to_pydict()
        assert len(t["jet_id"]) == n
        for j in range(n):
            idx = np.nonzero(hit[j])[0]
            order = np.lexsort((idx, tie_key(idx, len(idx)), -score[j, idx]))
            keep = idx[order][:R]
            rows, cols = keep // w, keep % w
            assert t["n_points"][j] == len(keep), (R, j)
            np.testing.assert_array_equal(t["row"][j], rows, err_msg=f"res {R} jet {j}")
            np.testing.assert_array_equal(t["col"][j], cols, err_msg=f"res {R} jet {j}")
            eta = (rows.astype(np.float32) - np.float32((h - 1) / 2)) * pixel
            phi = (cols.astype(np.float32) - np.float32((w - 1) / 2)) * pixel
            np.testing.assert_array_equal(np.asarray(t["eta"][j], np.float32), eta)
            np.testing.assert_array_equal(np.asarray(t["phi"][j], np.float32), phi)
            for ch, name in enumerate(channels):
                np.testing.assert_array_equal(np.asarray(t[name][j], np.float32), flat[j, keep, ch])
            checked += len(keep)
            if cfg["stages"].get("knn"):
                check_knn(cfg["stages"]["knn"], t, j, rows, cols)
    assert checked > 0
    print(f"reference_check: {n} jets, {checked} points at {pc['resolutions']} match numpy")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
