"""Reference converter: what jetpipe's main job does, written the straightforward way in
Python (numpy + scipy cKDTree + pyarrow), for the throughput comparison in benches/convert.rs.

Per jet: read the image with h5py, rank hit pixels by the sum of squared channel values
(ties by jetpipe's tie key, a hash of the pixel index), keep the top R for R in 256/512/768/1024, build the
k=16 kNN graph on (eta, phi) with cKDTree, and write one Parquet file per resolution with
the same point columns. Jet features beyond hit counts and channel sums are not computed,
so the comparison flatters this converter.

    python benches/reference_converter.py FILE OUT_DIR --n 1000 [--check JETPIPE_OUT]

With --check, the point sets (row, col per jet and resolution) are compared with jetpipe's
output for the same jets and any difference fails the run.
"""

import argparse
import glob
import sys
import time

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial import cKDTree
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
from tie_key import tie_key  # noqa: E402

RESOLUTIONS = (256, 512, 768, 1024)
K = 16
PIXEL = 0.0174


def convert(path, out, n, batch=64):
    f = h5py.File(path, "r")
    x = f["X_jets"]
    n = min(n, x.shape[0])
    h, w = x.shape[1], x.shape[2]
    cols = {r: {k: [] for k in ("jet", "row", "col", "eta", "phi", "tracks", "ecal", "hcal", "knn")} for r in RESOLUTIONS}
    for a in range(0, n, batch):
        imgs = x[a:min(a + batch, n)]
        for j, img in enumerate(imgs):
            flat = img.reshape(-1, img.shape[-1])
            score = (flat * flat).sum(axis=1, dtype=np.float32)
            hit = np.flatnonzero((flat > 0).any(axis=1))
            order = hit[np.lexsort((hit, tie_key(hit, len(hit)), -score[hit]))]
            for r in RESOLUTIONS:
                pts = order[:r]
                row, col = pts // w, pts % w
                eta = ((row - (h - 1) / 2) * PIXEL).astype(np.float32)
                phi = ((col - (w - 1) / 2) * PIXEL).astype(np.float32)
                c = cols[r]
                c["jet"].append(a + j)
                c["row"].append(row.astype(np.uint16))
                c["col"].append(col.astype(np.uint16))
                c["eta"].append(eta)
                c["phi"].append(phi)
                for ch, name in enumerate(("tracks", "ecal", "hcal")):
                    c[name].append(flat[pts, ch])
                if len(pts) > 1:
                    kk = min(K + 1, len(pts))
                    _, idx = cKDTree(np.stack([eta, phi], 1)).query(np.stack([eta, phi], 1), k=kk)
                    c["knn"].append(idx[:, 1:].astype(np.uint16).ravel())
                else:
                    c["knn"].append(np.zeros(0, np.uint16))
    for r, c in cols.items():
        table = pa.table({k: (v if k == "jet" else pa.array([np.asarray(a) for a in v])) for k, v in c.items()})
        pq.write_table(table, f"{out}/res={r}.parquet", compression="zstd")
    return n


def check(out, jetpipe_out, n):
    bad = 0
    for r in RESOLUTIONS:
        ref = pq.read_table(f"{out}/res={r}.parquet", columns=["jet", "row", "col"]).to_pydict()
        files = sorted(glob.glob(f"{jetpipe_out}/points/res={r}/*.parquet"))
        got = pa.concat_tables([pq.read_table(p, columns=["jet_id", "row", "col"]) for p in files]).to_pydict()
        by_id = {jid & 0xFFFFFFFF: (rw, cl) for jid, rw, cl in zip(got["jet_id"], got["row"], got["col"])}
        for jet, rw, cl in zip(ref["jet"], ref["row"], ref["col"]):
            if by_id.get(jet) != (rw, cl):
                bad += 1
                if bad <= 3:
                    print(f"res={r} jet {jet}: point sets differ", file=sys.stderr)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--check", help="jetpipe output directory to compare point sets with")
    a = ap.parse_args()
    t0 = time.perf_counter()
    n = convert(a.file, a.out, a.n)
    dt = time.perf_counter() - t0
    print(f"reference: {n} jets in {dt:.2f} s = {n / dt:.1f} jets/s")
    if a.check:
        bad = check(a.out, a.check, n)
        print(f"reference: point sets equal to jetpipe's for {n * len(RESOLUTIONS) - bad}/{n * len(RESOLUTIONS)} (jet, resolution) pairs")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
