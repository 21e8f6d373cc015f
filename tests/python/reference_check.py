"""Independent check of a jetpipe dataset against its HDF5 source, in numpy.

Usage: python3 reference_check.py SOURCE.h5 DATASET_DIR

Re-implements the point-cloud rule with h5py + numpy (float32 scores Σv² accumulated in
channel order, a pixel is a point when any channel > 0, order by score descending then
row-major pixel index, keep the top R) and compares every stored point, coordinate and
channel value, and the jets table, read with pyarrow. Exits non-zero on any difference.
"""
import json
import sys

import h5py
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq


def main(h5path: str, outdir: str) -> None:
    manifest = json.load(open(f"{outdir}/manifest.json"))
    assert manifest["status"] == "complete", manifest["status"]
    cfg = manifest["config"]
    pc = cfg["stages"]["pointcloud"]
    channels = cfg["source"]["channels"]
    pixel = np.float32(pc["pixel_size"])
    with h5py.File(h5path, "r") as f:
        X = f["X_jets"][:].astype(np.float32)
        y = f["y"][:]
        pt = f["pt"][:]
    n, h, w, c = X.shape
    flat = X.reshape(n, h * w, c)
    score = np.zeros((n, h * w), np.float32)
    for ch in range(c):
        score = score + flat[:, :, ch] * flat[:, :, ch]
    hit = (flat > 0).any(axis=2)

    jets = pq.read_table(f"{outdir}/jets").sort_by("jet_id")
    assert jets.num_rows == n, (jets.num_rows, n)
    np.testing.assert_array_equal(jets["label"].to_numpy(), y.astype(np.int8))
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
            order = np.lexsort((idx, -score[j, idx]))
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
    print(f"reference_check: {n} jets, {checked} points at {pc['resolutions']} match numpy")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
