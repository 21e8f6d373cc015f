"""jetpipe.Loader against the Rust loader (`pipeline load --dump`, byte for byte), against the
independent pyarrow reader (python/jetpipe_reader.py), and its resume, rank split and errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli

import jetpipe

def _reader():
    """python/jetpipe_reader.py by path (putting python/ on sys.path would shadow the
    installed package with the source tree, also in spawned DataLoader workers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("jetpipe_reader", ROOT / "python" / "jetpipe_reader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jr = _reader()

FIELDS = ("points", "mask", "labels", "jet_ids", "n_points", "neighbours", "knn_k")

# Settings that exercise every part of the loader: transforms with cached statistics, the
# derived point_index, reflection, a seeded split, small shuffle windows, ranks, drop_last.
CASES = {
    "transforms_reflect_split": dict(
        resolution=1024,
        batch_size=16,
        seed=3,
        features=[
            "eta",
            {"column": "tracks", "transforms": ["log1p", "standardise", {"clip": [-5, 5]}]},
            {"column": "ecal", "transforms": ["log1p", {"scale": 2.0}]},
            "phi",
            {"column": "point_index", "transforms": [{"scale": 0.001}]},
        ],
        reflect=["eta", "phi"],
        split={"train": 0.7, "val": 0.2, "seed": 4, "subset": "train"},
        shuffle_buffer=8,
        open_shards=2,
    ),
    "rank1_of_2_drop_last_no_neighbours": dict(
        resolution=256,
        batch_size=8,
        rank=1,
        world_size=2,
        drop_last=True,
        neighbours=False,
        seed=11,
    ),
    "sequential_val_split_image": dict(
        resolution=512, batch_size=5, shuffle=False, split="val",
        image={"pool": 4, "transforms": ["log1p"]},
    ),
}


def same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    assert a.tobytes() == b.tobytes(), f"{what}: values differ"


def loader_yaml(tmp_path: Path, dataset: Path, case: dict) -> Path:
    settings = dict(case, dataset=str(dataset))
    if isinstance(settings.get("split"), str):
        settings["split"] = {"subset": settings["split"]}
    path = tmp_path / "loader.yaml"
    path.write_text(json.dumps({"loader": settings}))  # JSON is YAML
    return path


def dumped(dir: Path):
    """The batches `pipeline load --dump` wrote, per epoch, in order."""
    out = {}
    for e in sorted(dir.iterdir()):
        out[e.name] = [
            {f.stem: np.load(f) for f in sorted(b.iterdir())} for b in sorted(e.iterdir())
        ]
    return out


@pytest.mark.parametrize("name", CASES)
def test_batches_are_the_rust_loaders_byte_for_byte(dataset, pipeline, tmp_path, name):
    case = CASES[name]
    yaml = loader_yaml(tmp_path, dataset, case)
    cli(pipeline, "load", str(yaml), "--epochs", "2", "--quiet", "--dump", str(tmp_path / "dump"))
    want = dumped(tmp_path / "dump")
    assert sorted(want) == ["epoch0", "epoch1"]
    kwargs = {k: v for k, v in case.items() if k != "resolution"}
    for loader in (
        jetpipe.Loader(dataset, case["resolution"], **kwargs),
        jetpipe.Loader.from_yaml(yaml),
    ):
        assert len(loader) == len(want["epoch0"])
        for e in (0, 1):
            got = list(loader.epoch(e))
            assert len(got) == len(want[f"epoch{e}"])
            for i, (g, w) in enumerate(zip(got, want[f"epoch{e}"])):
                assert sorted(g) == sorted(w), f"epoch {e} batch {i}: fields"
                for f in g:
                    same(g[f], w[f], f"epoch {e} batch {i} {f}")
    # The epochs differ (the shuffle and the reflection depend on the epoch).
    if case.get("shuffle", True):
        a = np.concatenate([b["jet_ids"] for b in want["epoch0"]])
        b = np.concatenate([b["jet_ids"] for b in want["epoch1"]])
        assert not np.array_equal(a, b)


def test_image_view_is_the_source_image(dataset):
    """At R=1024 the jets with at most 1024 hits come back as their HDF5 images, exactly."""
    import h5py

    with h5py.File(ROOT / "data-samples" / "qg_tiny.h5", "r") as f:
        source = f["X_jets"][:]  # [N, 125, 125, 3]
    loader = jetpipe.Loader(dataset, 1024, batch_size=16, shuffle=False, image={})
    exact = 0
    for b in loader.epoch(0):
        assert b["image"].dtype == np.float32 and b["image"].shape[1:] == (3, 125, 125)
        for i, jet_id in enumerate(b["jet_ids"]):
            want = source[int(jet_id) & 0xFFFFFFFF].transpose(2, 0, 1)
            hits = int((want.sum(0) != 0).sum())
            if hits <= 1024:
                np.testing.assert_array_equal(b["image"][i], want)
                exact += 1
            else:  # the 1024 highest-ranked pixels: a part of the image
                kept = b["image"][i] != 0
                np.testing.assert_array_equal(b["image"][i][kept], want[kept])
    assert exact > 0


def test_sequential_read_matches_the_pyarrow_reader(dataset):
    """An independent implementation (pyarrow + numpy) of the padded arrays."""
    loader = jetpipe.Loader(dataset, 1024, batch_size=16, shuffle=False)
    reader = jr.JetpipeReader(str(dataset), 1024, batch_size=16)
    got, want = list(loader.epoch(0)), list(reader.read_all())
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        for f in FIELDS:
            same(g[f], np.asarray(w[f]), f)


def test_resume_continues_exactly(dataset, pipeline, tmp_path):
    kw = dict(batch_size=4, seed=5, split="train", features=["tracks", "eta"])
    loader = jetpipe.Loader(dataset, 256, **kw)
    full = list(loader.epoch(1))
    epoch = loader.epoch(1)
    head = [next(epoch) for _ in range(3)]
    state = epoch.state()
    assert state["epoch"] == 1 and state["batches"] == 3
    # A new process would open a new loader; the state is plain JSON.
    again = jetpipe.Loader(dataset, 256, **kw)
    tail = list(again.resume(json.loads(json.dumps(state))))
    assert len(head) + len(tail) == len(full)
    for g, w in zip(head + tail, full):
        same(g["jet_ids"], w["jet_ids"], "jet_ids")
        same(g["points"], w["points"], "points")
    # The CLI's state after three batches of epoch 0 is the package's, and resumes in it.
    yaml = loader_yaml(tmp_path, dataset, dict(kw, resolution=256))
    r = cli(pipeline, "load", str(yaml), "--stop-after", "3", "--quiet")
    cli_state = json.loads(r.stdout.split("state:", 1)[1])
    epoch0 = loader.epoch(0)
    for _ in range(3):
        next(epoch0)
    assert epoch0.state() == cli_state
    rest = [b["jet_ids"] for b in loader.resume(cli_state)]
    want = [b["jet_ids"] for b in list(loader.epoch(0))[3:]]
    assert [list(x) for x in rest] == [list(x) for x in want]
    # A state of other settings is refused, with the Rust message.
    other = jetpipe.Loader(dataset, 256, **dict(kw, batch_size=8))
    with pytest.raises(ValueError, match="other loader settings"):
        other.resume(state)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_cover_every_jet_once(dataset, world):
    all_ids = np.concatenate(
        [b["jet_ids"] for b in jetpipe.Loader(dataset, 256, batch_size=4, split="train").epoch(2)]
    )
    per_rank = [
        np.concatenate(
            [
                b["jet_ids"]
                for b in jetpipe.Loader(
                    dataset, 256, batch_size=4, split="train", rank=r, world_size=world
                ).epoch(2)
            ]
        )
        for r in range(world)
    ]
    got = np.concatenate(per_rank)
    assert len(got) == len(np.unique(got)) == len(all_ids) == 47
    assert set(got.tolist()) == set(all_ids.tolist())
    counts = {len(jetpipe.Loader(dataset, 256, batch_size=4, split="train", rank=r,
                                 world_size=world)) for r in range(world)}
    assert len(counts) == 1, "every rank gets the same number of batches"


def edges_by_loop(b):
    want, offset = [], 0
    for i in range(len(b["n_points"])):
        n, kk = int(b["n_points"][i]), int(b["knn_k"][i])
        for p in range(n):
            for j in range(kk):
                nb = int(b["neighbours"][i, p, j])
                assert nb < n and nb != p
                want.append((offset + nb, offset + p))
        offset += n
    return want, offset


def check_graph_helpers(b):
    ei = jetpipe.edge_index(b)
    x, jet = jetpipe.real_points(b)
    want, total = edges_by_loop(b)
    assert ei.dtype == np.int64 and ei.shape == (2, len(want))
    assert [tuple(e) for e in ei.T.tolist()] == want
    assert len(x) == len(jet) == total
    offset = 0
    for i, n in enumerate(b["n_points"].astype(int)):
        np.testing.assert_array_equal(x[offset : offset + n], b["points"][i, :n])
        assert (jet[offset : offset + n] == i).all()
        offset += n
    assert jetpipe.neighbour_mask(b).sum() == len(want)


def test_graph_helpers_agree_with_a_loop(dataset):
    # R=1024: jets with padding points (the tiny sample's jets have 426+ hits).
    b = next(jetpipe.Loader(dataset, 1024, batch_size=16, seed=2).epoch(0))
    assert (b["n_points"] < 1024).any() and (b["mask"] == 0).any()
    assert (b["knn_k"] == np.minimum(16, b["n_points"].astype(int) - 1)).all()
    check_graph_helpers(b)


def test_graph_helpers_on_short_jets():
    """Jets with fewer than k + 1 points (knn_k < k) and a one-point jet, built by hand as the
    loader lays them out: padding entries hold the point's own index."""
    R, k = 6, 3
    n_points = np.array([4, 1, 6], np.uint16)
    knn_k = np.minimum(k, n_points.astype(int) - 1).astype(np.uint16)  # 3, 0, 3
    rng = np.random.default_rng(0)
    nb = np.tile(np.arange(R, dtype=np.uint16)[None, :, None], (3, 1, k))
    for i, n in enumerate(n_points):
        for p in range(n):
            others = [q for q in range(n) if q != p]
            chosen = rng.permutation(others)[: knn_k[i]]
            nb[i, p, : len(chosen)] = chosen
    mask = (np.arange(R)[None, :] < n_points[:, None]).astype(np.uint8)
    points = rng.normal(size=(3, R, 2)).astype(np.float32) * mask[:, :, None]
    b = dict(points=points, mask=mask, n_points=n_points, knn_k=knn_k, neighbours=nb)
    check_graph_helpers(b)
    assert jetpipe.edge_index(b).shape[1] == 4 * 3 + 0 + 6 * 3


def test_stats_from_takes_the_training_statistics(dataset):
    feats = [{"column": "ecal", "transforms": ["log1p", "standardise"]}]
    train = jetpipe.Loader(dataset, 256, features=feats, split="train")
    val_own = jetpipe.Loader(dataset, 256, features=feats, split="val")
    val = jetpipe.Loader(dataset, 256, features=feats, split="val", stats_from="train")
    assert val.transforms == train.transforms != val_own.transforms


def test_worker_parts_taken_in_turn_are_the_epoch(dataset):
    loader = jetpipe.Loader(dataset, 256, batch_size=4, seed=9)
    full = [b["jet_ids"].tolist() for b in loader.epoch(2)]
    parts = [[b["jet_ids"].tolist() for b in loader.epoch(2, worker=w, workers=3)] for w in range(3)]
    assert [parts[i % 3][i // 3] for i in range(len(full))] == full
    assert sum(map(len, parts)) == len(full)
    with pytest.raises(ValueError, match="no resumable state"):
        loader.epoch(2, worker=1, workers=3).state()
    with pytest.raises(ValueError, match="need 0 <= part < parts"):
        loader.epoch(0, worker=3, workers=3)


def test_bad_arguments_raise_with_the_clis_message(dataset, pipeline, tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        jetpipe.Loader(tmp_path / "missing", 256)
    with pytest.raises(ValueError, match=r"resolution 300 not in this dataset \(it has \[256, 512, 768, 1024\]\)"):
        jetpipe.Loader(dataset, 300)
    with pytest.raises(ValueError, match="rank 2 is not below world_size 2"):
        jetpipe.Loader(dataset, 256, rank=2, world_size=2)
    with pytest.raises(ValueError, match="no column `nope` in the points table"):
        jetpipe.Loader(dataset, 256, features=["tracks", "nope"])
    with pytest.raises(ValueError, match="`phi` is not one of the features"):
        jetpipe.Loader(dataset, 256, features=["eta"], reflect=["phi"])
    with pytest.raises(ValueError, match="batch_size"):
        jetpipe.Loader(dataset, 256, batch_size=0)
    with pytest.raises(ValueError, match="not one of train, val, test"):
        jetpipe.Loader(dataset, 256, split="training")
    with pytest.raises(ValueError, match="is not a valid setting value"):
        jetpipe.Loader(dataset, 256, seed=object())
    # A loader YAML with an unknown key: the message names file, line and key, as the CLI's.
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"loader:\n  dataset: {dataset}\n  resolution: 256\n  batchsize: 3\n")
    with pytest.raises(ValueError) as e:
        jetpipe.Loader.from_yaml(bad)
    assert f"{bad}:4" in str(e.value) and "batchsize" in str(e.value)
    r = cli(pipeline, "load", str(bad), ok=False)
    assert r.returncode == 2 and f"error: {e.value}" in r.stderr
    with pytest.raises(FileNotFoundError):
        jetpipe.Loader.from_yaml(tmp_path / "nowhere.yaml")
