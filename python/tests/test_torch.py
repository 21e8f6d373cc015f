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


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_dataloader_yields_the_loaders_batches_in_order(dataset, workers):
    ds = jt.JetpipeIterableDataset(dataset, 256, batch_size=8, split="train", seed=1)
    loader = jetpipe.Loader(dataset, 256, batch_size=8, split="train", seed=1)
    orders = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        got = list(DataLoader(ds, batch_size=None, num_workers=workers))
        want = list(loader.epoch(epoch))
        assert [b["jet_ids"].tolist() for b in got] == [b["jet_ids"].view(np.int64).tolist() for b in want]
        for g, w in zip(got, want):
            assert torch.equal(g["points"], torch.from_numpy(w["points"]))
        ids = ids_of(got)
        assert len(ids) == len(np.unique(ids)) == 47
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1]), "epochs are shuffled differently"


def test_ranks_and_workers_split_the_epoch(dataset):
    """Two ranks given explicitly, two workers each: each rank yields its loader rank's batches."""
    seen = []
    for rank in (0, 1):
        ds = jt.JetpipeIterableDataset(dataset, 256, batch_size=4, rank=rank, world_size=2)
        got = list(DataLoader(ds, batch_size=None, num_workers=2))
        want = jetpipe.Loader(dataset, 256, batch_size=4, rank=rank, world_size=2).epoch(0)
        assert [b["jet_ids"].tolist() for b in got] == [b["jet_ids"].view(np.int64).tolist() for b in want]
        seen.append(ids_of(got))
    got = np.concatenate(seen)
    assert len(got) == len(np.unique(got)) == 64
    assert len(seen[0]) == len(seen[1]) == 32


def _ddp_rank(rank, world, init, dataset, out):
    """One torch.distributed rank (spawned): the dataset reads its rank from the process group;
    its DataLoader workers are spawned too (they do not see the group)."""
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        ds = jt.JetpipeIterableDataset(dataset, 256, batch_size=4, seed=3)
        dl = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="spawn")
        np.save(out, ids_of(dl))
    finally:
        torch.distributed.destroy_process_group()


def test_torch_distributed_ranks_with_spawned_workers(dataset, tmp_path):
    world = 2
    init = f"file://{tmp_path / 'rendezvous'}"
    outs = [tmp_path / f"rank{r}.npy" for r in range(world)]
    ctx = torch.multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ddp_rank, args=(r, world, init, str(dataset), str(outs[r]))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0, f"rank process exit code {p.exitcode}"
    per_rank = [np.load(o) for o in outs]
    for r in range(world):
        want = np.concatenate([
            b["jet_ids"].view(np.int64)
            for b in jetpipe.Loader(dataset, 256, batch_size=4, seed=3, rank=r, world_size=world, prefetch=1).epoch(0)
        ])
        np.testing.assert_array_equal(per_rank[r], want)
    got = np.concatenate(per_rank)
    assert len(got) == len(np.unique(got)) == 64


def test_tensors_have_torch_types(dataset):
    b = next(iter(DataLoader(jt.JetpipeIterableDataset(dataset, 256, batch_size=4), batch_size=None)))
    assert b["points"].dtype == torch.float32 and b["points"].shape == (4, 256, 5)
    assert b["mask"].dtype == torch.bool
    for k in ("labels", "n_points", "neighbours", "knn_k", "jet_ids"):
        assert b[k].dtype == torch.int64, k
    assert (b["mask"].sum(1) == b["n_points"]).all()
    nb = next(jetpipe.Loader(dataset, 1024, batch_size=4).epoch(0))
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


def test_to_pyg_gives_pyg_the_stored_graphs(dataset):
    """PyG reads the batch as graphs: every real point receives knn_k edges, the jets' points
    pool back to the masked means, and a GCNConv runs on it."""
    try:
        import torch_geometric as tg
    except ImportError:
        tg = None
    need(tg is not None, "torch_geometric is not installed")
    from torch_geometric.nn import GCNConv, global_mean_pool
    from torch_geometric.utils import degree

    b = next(jetpipe.Loader(dataset, 1024, batch_size=8, seed=4).epoch(0))
    g = jt.to_pyg(b)
    assert isinstance(g, tg.data.Data)
    n = b["n_points"].astype(np.int64)
    assert g.num_nodes == int(n.sum()) and g.x.shape == (int(n.sum()), 5)
    indeg = degree(g.edge_index[1], num_nodes=g.num_nodes).long()
    want = torch.from_numpy(np.repeat(b["knn_k"].astype(np.int64), n))
    assert torch.equal(indeg, want)
    m = b["mask"].astype(np.float64)[:, :, None]
    means = (b["points"] * m).sum(1) / m.sum(1)
    pooled = global_mean_pool(g.x.double(), g.batch)
    np.testing.assert_allclose(pooled.numpy(), means, rtol=1e-6, atol=1e-8)
    out = GCNConv(5, 7)(g.x, g.edge_index)
    assert out.shape == (g.num_nodes, 7) and torch.isfinite(out).all()

