"""jetpipe.torch: the DataLoader route (each jet once per epoch across workers and ranks), the
tensor types, and the README's PyTorch training loop, run as written."""

import re

import numpy as np
import pytest
from conftest import ROOT, need

import jetpipe

try:
    import torch
    from torch.utils.data import DataLoader

    import jetpipe.torch as jt
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


@pytest.fixture(autouse=True)
def _torch():
    need(torch is not None, "torch is not installed")


def ids_of(batches):
    return np.concatenate([b["jet_ids"].numpy() for b in batches])


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_yields_each_jet_once_per_epoch(dataset, workers):
    ds = jt.JetpipeIterableDataset(dataset, 256, batch_size=8, split="train", seed=1)
    want = np.concatenate(
        [b["jet_ids"] for b in jetpipe.Loader(dataset, 256, batch_size=8, split="train", seed=1).epoch(0)]
    )
    orders = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        got = ids_of(DataLoader(ds, batch_size=None, num_workers=workers))
        assert len(got) == len(np.unique(got)) == len(want) == 47
        assert set(got.tolist()) == set(want.view(np.int64).tolist())
        orders.append(got)
    assert not np.array_equal(orders[0], orders[1]), "epochs are shuffled differently"


def test_ranks_and_workers_split_the_epoch(dataset):
    """Two torch.distributed-style ranks, two workers each: four loader ranks, one epoch."""
    seen = []
    for rank in (0, 1):
        ds = jt.JetpipeIterableDataset(dataset, 256, batch_size=4, rank=rank, world_size=2)
        seen.append(ids_of(DataLoader(ds, batch_size=None, num_workers=2)))
    got = np.concatenate(seen)
    assert len(got) == len(np.unique(got)) == 64
    assert len(seen[0]) == len(seen[1]) == 32


def test_tensors_have_torch_types(dataset):
    b = next(iter(DataLoader(jt.JetpipeIterableDataset(dataset, 256, batch_size=4), batch_size=None)))
    assert b["points"].dtype == torch.float32 and b["points"].shape == (4, 256, 5)
    assert b["mask"].dtype == torch.bool
    for k in ("labels", "n_points", "neighbours", "knn_k", "jet_ids"):
        assert b[k].dtype == torch.int64, k
    assert (b["mask"].sum(1) == b["n_points"]).all()
    nb = next(iter(jetpipe.Loader(dataset, 256, batch_size=4)))
    ei = jt.edge_index(nb)
    assert ei.dtype == torch.int64 and ei.shape[0] == 2
    n, k = nb["n_points"].astype(np.int64), nb["knn_k"].astype(np.int64)
    assert ei.shape[1] == int((n * k).sum())


def test_readme_training_loop_runs(dataset):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- python-example -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    assert len(code.strip().splitlines()) <= 16
    code = code.replace('"out/qg1024"', repr(str(dataset)))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert np.isfinite(scope["loss"].item())
