"""Fast checks of the committed sample files and of the generator's determinism.

    pytest data-samples/generator/test_generator.py     (about 20 s)

Schema tests need only h5py + numpy; regeneration tests are skipped cleanly
when pythia8mc / fastjet are not installed.
"""
from __future__ import annotations

import hashlib
import os
import sys

import pytest

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def no_track_times(d):
    return not d.id.get_create_plist().get_obj_track_times()


@pytest.mark.parametrize("name,n", [("qg_sample.h5", 1000), ("qg_tiny.h5", 64)])
def test_qg_schema(name, n):
    with h5py.File(os.path.join(SAMPLES, name), "r") as f:
        assert sorted(f.keys()) == ["X_jets", "m0", "pt", "y"]
        x = f["X_jets"]
        assert x.dtype == np.float32 and x.shape == (n, 125, 125, 3)
        assert x.chunks == (1, 125, 125, 3)
        assert x.compression == "gzip" and x.compression_opts == 4
        for k in ("m0", "pt", "y"):
            assert f[k].dtype == np.float32 and f[k].shape == (n,)
        assert all(no_track_times(f[k]) for k in f)
        y, pt, m0 = f["y"][:], f["pt"][:], f["m0"][:]
        assert set(np.unique(y)) == {0.0, 1.0} and (y == 1).sum() == n // 2
        assert pt.min() >= 70 and pt.max() < 200 and (m0 >= 0).all()
        X = x[: min(n, 200)]
    assert np.isfinite(X).all() and (X >= 0).all()
    zero = (X == 0).mean()
    assert 0.95 < zero < 0.995, zero
    H = X[..., 2].reshape(len(X), 25, 5, 25, 5)
    assert np.array_equal(H, np.broadcast_to(H[:, :, :1, :, :1], H.shape))
    assert (X[..., 0] > 0).any() and (X[..., 1] > 0).any() and (X[..., 2] > 0).any()


def test_egamma_schema():
    with h5py.File(os.path.join(SAMPLES, "egamma_sample.h5"), "r") as f:
        assert sorted(f.keys()) == ["X", "y"]
        assert f["X"].dtype == np.float32 and f["X"].shape == (500, 32, 32, 2)
        assert f["X"].chunks == (1, 32, 32, 2)
        assert f["y"].dtype == np.float32 and f["y"].shape == (500,)
        assert all(no_track_times(f[k]) for k in f)
        X, y = f["X"][:], f["y"][:]
    assert (y == 1).sum() == 250 and (y == 0).sum() == 250
    E, T = X[..., 0], X[..., 1]
    assert (E >= 0).all() and np.isfinite(X).all()
    assert (T[E == 0] == 0).all()
    assert (E[:, 16, 16] == E.max(axis=(1, 2))).all()  # crops centred on the seed crystal


def test_egamma_deterministic(tmp_path):
    import generate
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate.main(["egamma", "--n", "20", "--seed", "7", "--out", str(a)])
    generate.main(["egamma", "--n", "20", "--seed", "7", "--out", str(b)])
    assert sha(a) == sha(b)


def test_bench_resample(tmp_path):
    import generate
    src = os.path.join(SAMPLES, "qg_tiny.h5")
    out = tmp_path / "bench.h5"
    generate.main(["bench", "--input", src, "--n", "50", "--block", "16", "--seed", "3", "--out", str(out)])
    generate.main(["bench", "--input", src, "--n", "50", "--block", "16", "--seed", "3",
                   "--out", str(tmp_path / "bench2.h5")])
    assert sha(out) == sha(tmp_path / "bench2.h5")
    with h5py.File(src, "r") as fs, h5py.File(out, "r") as fo:
        assert fo["X_jets"].chunks == (1, 125, 125, 3) and fo["X_jets"].compression == "gzip"
        assert (fo["y"][:] == 1).sum() == 25
        S, spt = fs["X_jets"][:], fs["pt"][:]
        for i in range(10):
            img = fo["X_jets"][i]
            j = int(np.flatnonzero(spt == fo["pt"][i])[0])
            variants = [S[j], S[j][::-1], S[j][:, ::-1], S[j][::-1, ::-1]]
            assert any(np.array_equal(img, v) for v in variants)


def test_qg_regeneration_deterministic(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    import generate
    args = ["qg", "--n", "8", "--seed", "11", "--block-size", "2", "--pileup", "5"]
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate.main(args + ["--out", str(a), "--workers", "1"])
    generate.main(args + ["--out", str(b), "--workers", "2"])
    assert sha(a) == sha(b)
    assert sha(tmp_path / "a_truth.csv") == sha(tmp_path / "b_truth.csv")
    with h5py.File(a, "r") as f:
        assert f["X_jets"].shape == (8, 125, 125, 3)
        assert (f["y"][:] == 1).sum() == 4
        X = f["X_jets"][:]
    assert (X >= 0).all() and np.isfinite(X).all()
