"""PyTorch helpers: an ``IterableDataset`` over the Rust loader, and PyTorch Geometric graphs.

    from torch.utils.data import DataLoader
    from jetpipe.torch import JetpipeIterableDataset

    ds = JetpipeIterableDataset("out/qg1024", 1024, batch_size=256, split="train")
    for epoch in range(10):
        ds.set_epoch(epoch)
        for batch in DataLoader(ds, batch_size=None, num_workers=2):
            x, m, y = batch["points"], batch["mask"], batch["labels"]

Each ``torch.distributed`` rank is a rank of the jetpipe loader (read in the main process
when the dataset is made and at each ``set_epoch``), and its DataLoader workers take turns
over that rank's batches (worker w serves batches w, w + n, …), so the DataLoader yields
exactly the batches of ``jetpipe.Loader(..., rank, world_size).epoch(e)``, in order, whatever
the number of workers. With ``persistent_workers=True`` the workers keep the epoch they
started with: leave it off (the loader's own threads make worker start-up cheap). Tensors: ``points`` float32, ``mask`` bool,
``labels``, ``n_points``, ``knn_k`` and ``neighbours`` int64, ``jet_ids`` int64 (the uint64 ids
reinterpreted; they are below 2^63).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch

import jetpipe

__all__ = ["JetpipeIterableDataset", "to_torch", "edge_index", "to_pyg"]


def to_torch(batch: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """A batch's numpy arrays as torch tensors (``points`` without a copy)."""
    out = {
        "points": torch.from_numpy(batch["points"]),
        "mask": torch.from_numpy(batch["mask"]).bool(),
        "labels": torch.from_numpy(batch["labels"].astype(np.int64)),
        "jet_ids": torch.from_numpy(batch["jet_ids"].view(np.int64)),
        "n_points": torch.from_numpy(batch["n_points"].astype(np.int64)),
    }
    if "neighbours" in batch:
        out["neighbours"] = torch.from_numpy(batch["neighbours"].astype(np.int64))
        out["knn_k"] = torch.from_numpy(batch["knn_k"].astype(np.int64))
    return out


def edge_index(batch: Dict[str, np.ndarray]) -> torch.Tensor:
    """``[2, E]`` int64 edge index for PyTorch Geometric (see ``jetpipe.edge_index``), from a
    batch of numpy arrays."""
    return torch.from_numpy(jetpipe.edge_index(batch))


def to_pyg(batch: Dict[str, np.ndarray]):
    """The batch as a ``torch_geometric.data.Batch``-like ``Data``: ``x`` (real points),
    ``edge_index``, ``batch`` (jet of each point), ``y`` (labels) and ``jet_ids``."""
    from torch_geometric.data import Data

    x, b = jetpipe.real_points(batch)
    return Data(
        x=torch.from_numpy(x),
        edge_index=edge_index(batch),
        batch=torch.from_numpy(b),
        y=torch.from_numpy(batch["labels"].astype(np.int64)),
        jet_ids=torch.from_numpy(batch["jet_ids"].view(np.int64)),
        num_nodes=len(b),
    )


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class JetpipeIterableDataset(torch.utils.data.IterableDataset):
    """The jetpipe loader as an ``IterableDataset`` yielding whole batches (use
    ``DataLoader(ds, batch_size=None)``). Keyword arguments are ``jetpipe.Loader``'s;
    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialised.
    ``set_epoch(e)`` picks the epoch (the shuffle of each epoch is fixed by seed and e).
    ``prefetch`` defaults to 1 thread per DataLoader worker."""

    def __init__(
        self,
        dataset,
        resolution: int,
        *,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        epoch: int = 0,
        tensors: bool = True,
        **loader_kwargs: Any,
    ):
        super().__init__()
        loader_kwargs.setdefault("prefetch", 1)
        self.dataset, self.resolution = dataset, resolution
        self.given = (rank, world_size)
        self.epoch, self.tensors, self.loader_kwargs = epoch, tensors, loader_kwargs
        self._set_ranks()
        # Opening here validates the settings in the main process (errors before any worker
        # starts) and computes any `standardise` statistics once.
        jetpipe.Loader(dataset, resolution, **self._ranks, **loader_kwargs)

    def _set_ranks(self) -> None:
        # In the main process: spawned workers do not see torch.distributed initialised.
        rank, world = _distributed()
        given_rank, given_world = self.given
        self._ranks = {
            "rank": rank if given_rank is None else given_rank,
            "world_size": world if given_world is None else given_world,
        }

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._set_ranks()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        loader = jetpipe.Loader(self.dataset, self.resolution, **self._ranks, **self.loader_kwargs)
        if worker >= len(loader):
            return  # more workers than batches: this one has none
        for batch in loader.epoch(self.epoch, worker=worker, workers=workers):
            yield to_torch(batch) if self.tensors else batch
