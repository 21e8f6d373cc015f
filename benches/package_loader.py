"""Batches per second into Python: the jetpipe package against the pure-Python reader, a plain
pyarrow + numpy read and the Rust loader itself (`pipeline load`), all in one run on the same
shards (R=1024, B=256, features tracks ecal hcal eta phi, prefetch 2), without and with the kNN
neighbours. Then the overlap: a consumer that waits 20 ms per batch (a stand-in for a GPU step,
GIL released) with and without the loader running behind it.

    .ci/with-tools python benches/package_loader.py --pipeline target/release/pipeline

needs the package installed in release (``pip install ./python``) and a release ``pipeline``
(``cargo build --release --no-default-features``). The dataset is the main job converted from
the 20,000-jet generator bench file, made once under $TMPDIR/jetpipe-bench/ and shared with
``cargo bench --bench loader``; ``--dataset DIR`` uses another.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import jetpipe

ROOT = Path(__file__).resolve().parents[1]  # benches/ -> the repository
def _reader():
    """python/jetpipe_reader.py by path (putting python/ on sys.path would shadow the
    installed package with the source tree, also in spawned DataLoader workers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("jetpipe_reader", ROOT / "python" / "jetpipe_reader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jr = _reader()

R, B = 1024, 256
FEATURES = ["tracks", "ecal", "hcal", "eta", "phi"]


def dataset(pipeline: str) -> Path:
    work = Path(tempfile.gettempdir()) / "jetpipe-bench"
    work.mkdir(exist_ok=True)
    h5 = work / "qg_bench_20000.h5"
    if not h5.exists():
        print(f"generating {h5} …", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(ROOT / "data-samples/generator/generate.py"), "bench",
             "--input", str(ROOT / "data-samples/qg_sample.h5"), "--n", "20000", "--out", str(h5)],
            check=True,
        )
    out = work / "loader_20000"
    manifest = out / "manifest.json"
    if not (manifest.exists() and '"status": "complete"' in manifest.read_text()):
        text = (ROOT / "pipelines/qg1024.yaml").read_text()
        yaml = out.with_suffix(".yaml")
        yaml.write_text(text.replace("data-samples/qg_sample.h5", str(h5)).replace("out/qg1024", str(out)))
        subprocess.run([pipeline, "run", "-q", "--overwrite", str(yaml)], check=True)
    return out


def rate(make_batches, epochs: int) -> float:
    jets, start = 0, time.perf_counter()
    for e in range(epochs):
        for b in make_batches(e):
            jets += b["points"].shape[0]
    return jets / (time.perf_counter() - start)


def package(ds: Path, shuffle: bool, neighbours: bool, epochs: int = 3) -> float:
    loader = jetpipe.Loader(ds, R, batch_size=B, prefetch=2, shuffle=shuffle, neighbours=neighbours)
    return rate(loader.epoch, epochs)


def reader(ds: Path, neighbours: bool) -> float:
    r = jr.JetpipeReader(str(ds), R, batch_size=B, neighbours=neighbours)
    return rate(lambda e: r.read_all(), 1)


def plain(ds: Path, neighbours: bool) -> float:
    """What one writes by hand: pyarrow batches of B rows, list columns flattened and padded
    with numpy fancy indexing."""
    files = sorted((ds / f"points/res={R}").glob("*.parquet"))
    cols = FEATURES + ["jet_id", "label", "n_points"] + (["knn"] if neighbours else [])

    def batches(_e):
        for f in files:
            for rb in pq.ParquetFile(f).iter_batches(batch_size=B, columns=cols):
                n = rb.num_rows
                npts = rb.column("n_points").to_numpy().astype(np.int64)
                rows = np.repeat(np.arange(n), npts)
                pos = np.arange(npts.sum()) - np.repeat(np.cumsum(npts) - npts, npts)
                x = np.zeros((n, R, len(FEATURES)), np.float32)
                for i, c in enumerate(FEATURES):
                    x[rows, pos, i] = rb.column(c).values.to_numpy()
                out = {"points": x, "mask": (np.arange(R)[None, :] < npts[:, None]).astype(np.uint8)}
                if neighbours:
                    k = 16
                    flat = rb.column("knn").values.to_numpy().reshape(-1, k)
                    nb = np.zeros((n, R, k), np.uint16)
                    nb[rows, pos] = flat
                    out["neighbours"] = nb
                yield out

    return rate(batches, 1)


def rust(pipeline: str, ds: Path, shuffle: bool, neighbours: bool) -> float:
    with tempfile.TemporaryDirectory() as d:
        yaml = Path(d) / "loader.yaml"
        spec = dict(dataset=str(ds), resolution=R, batch_size=B, prefetch=2, shuffle=shuffle,
                    neighbours=neighbours, features=FEATURES)
        yaml.write_text(json.dumps({"loader": spec}))
        out = subprocess.run([pipeline, "load", str(yaml), "--epochs", "3", "--quiet"],
                             capture_output=True, text=True, check=True).stdout
    return float(re.search(r"([0-9.]+) jets/s", out).group(1))


def overlap(ds: Path, step_s: float = 0.02) -> tuple[float, float, float]:
    """(consumer alone, loader alone, both) seconds for one epoch with neighbours."""
    loader = jetpipe.Loader(ds, R, batch_size=B, prefetch=2)
    n = len(loader)
    t = time.perf_counter()
    for _ in range(n):
        time.sleep(step_s)
    alone = time.perf_counter() - t
    t = time.perf_counter()
    for _ in loader.epoch(0):
        pass
    load = time.perf_counter() - t
    t = time.perf_counter()
    for _ in loader.epoch(1):
        time.sleep(step_s)
    both = time.perf_counter() - t
    return alone, load, both


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", required=True, help="a release `pipeline` binary")
    ap.add_argument("--dataset", type=Path, help="default: the 20k-jet bench dataset")
    a = ap.parse_args()
    ds = a.dataset or dataset(a.pipeline)
    jets = jetpipe.Loader(ds, R, batch_size=B).jets
    print(f"dataset {ds}: {jets} jets, R={R}, B={B}, prefetch 2, {os.cpu_count()} cores, "
          f"jetpipe {jetpipe.__version__}, numpy {np.__version__}")
    print(f"{'':34}{'no neighbours':>16}{'neighbours':>16}")
    rows = {}
    for name, f in [
        ("Rust loader (pipeline load), shuffled", lambda nb: rust(a.pipeline, ds, True, nb)),
        ("Rust loader (pipeline load), sequential", lambda nb: rust(a.pipeline, ds, False, nb)),
        ("jetpipe package, shuffled", lambda nb: package(ds, True, nb)),
        ("jetpipe package, sequential", lambda nb: package(ds, False, nb)),
        ("jetpipe_reader.py (sequential)", lambda nb: reader(ds, nb)),
        ("plain pyarrow + numpy (sequential)", lambda nb: plain(ds, nb)),
    ]:
        rows[name] = (f(False), f(True))
        print(f"{name:42}{rows[name][0]:>10.0f} jets/s{rows[name][1]:>10.0f} jets/s", flush=True)
    base = rows["jetpipe_reader.py (sequential)"]
    for label, pkg, rs in [
        ("shuffled", rows["jetpipe package, shuffled"], rows["Rust loader (pipeline load), shuffled"]),
        ("sequential", rows["jetpipe package, sequential"], rows["Rust loader (pipeline load), sequential"]),
    ]:
        print(f"package {label}: {pkg[0] / base[0]:.1f}x / {pkg[1] / base[1]:.1f}x the Python reader "
              f"(target >= 5x), {pkg[0] / rs[0]:.2f} / {pkg[1] / rs[1]:.2f} of the Rust loader "
              "(target >= 0.8), without / with neighbours")
    alone, load, both = overlap(ds)
    print(f"overlap, one epoch with neighbours: consumer alone (20 ms/batch) {alone:.2f} s, "
          f"loader alone {load:.2f} s, both {both:.2f} s (sum {alone + load:.2f} s)")


if __name__ == "__main__":
    main()
