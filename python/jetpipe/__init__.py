"""jetpipe from Python: the Rust loader, the conversion and SQL, as a package.

Batches come from the Rust loader itself (``jetpipe::loader``: shuffling, rank sharding, exact
resume, transforms), assembled on Rust threads while Python runs, and handed over as numpy
arrays without a copy::

    import jetpipe
    loader = jetpipe.Loader("out/qg1024", 1024, batch_size=256, split="train")
    for batch in loader.epoch(0):
        x, m, y = batch["points"], batch["mask"], batch["labels"]

A batch is a dict of numpy arrays (B jets, R points, F features, k neighbours):

    points     float32 [B, R, F]  features of each point, zero-padded, transforms applied
    mask       uint8   [B, R]     1 for a real point
    labels     int8    [B]        the source's ``y`` (-1 where absent)
    jet_ids    uint64  [B]        join key with the ``jets`` table
    n_points   uint16  [B]        real points per jet
    neighbours uint16  [B, R, k]  kNN indices (only when the dataset has graphs and
    knn_k      uint16  [B]        ``neighbours=True``); entry j of point p is real iff
                                  mask[b, p] and j < knn_k[b]; padding = the point's own index
    image      float32 [B, C, H, W]  only with ``image=``: the jet as an image

``jetpipe.torch`` has a ``torch.utils.data.IterableDataset`` and PyTorch Geometric helpers.
``jetpipe.run`` converts (``pipeline run``), ``jetpipe.sql`` queries (``pipeline sql``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _jetpipe

__all__ = [
    "Loader",
    "Epoch",
    "run",
    "sql",
    "neighbour_mask",
    "edge_index",
    "real_points",
    "__version__",
]
__version__ = _jetpipe.__version__

PathLike = Union[str, "os.PathLike[str]"]
Batch = Dict[str, np.ndarray]

_SUBSETS = ("train", "val", "test")


def _split(split: Union[None, str, Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if split is None:
        return None
    if isinstance(split, str):
        if split not in _SUBSETS:
            raise ValueError(f"split: `{split}` is not one of train, val, test")
        return {"subset": split}
    if isinstance(split, Mapping):
        return dict(split)
    raise ValueError(f"split: expected 'train', 'val', 'test' or a dict, got {type(split).__name__}")


def _feature(f: Any) -> Any:
    if isinstance(f, str):
        return f
    if isinstance(f, Mapping):
        return dict(f)
    raise ValueError(f"features: expected a column name or a dict, got {f!r}")


class Epoch:
    """One epoch's batches, in order (an iterator of batch dicts)."""

    def __init__(self, inner: "_jetpipe.Epoch", part: Optional[Tuple[int, int]] = None):
        self._inner = inner
        self._part = part

    def __iter__(self) -> "Epoch":
        return self

    def __next__(self) -> Batch:
        return next(self._inner)

    def state(self) -> Dict[str, Any]:
        """Where the loader stands after the batches served so far; ``Loader.resume(state)``
        continues with exactly the batches an uninterrupted loader would serve next. Save it
        with the model checkpoint (it is plain JSON)."""
        if self._part is not None:
            raise ValueError(
                f"epoch part {self._part[0]} of {self._part[1]}: a worker's share of an epoch "
                "has no resumable state (resume the whole epoch's loader instead)"
            )
        return json.loads(self._inner.state_json())


class Loader:
    """The Rust loader over one resolution of a dataset written by ``pipeline run``.

    Keyword arguments are the loader YAML's keys (``pipeline schema``; ``docs/loader.md``);
    the ones left out keep the YAML defaults. ``split`` is ``"train"``, ``"val"``, ``"test"``
    (default fractions 0.8/0.1/0.1) or a dict ``{train, val, seed, subset}``. ``features`` is a
    list of column names or ``{"column": NAME, "transforms": [...]}`` dicts. ``stats_from``
    (same forms as ``split``) takes the ``standardise`` statistics from other jets than the
    selected ones: a validation loader passes ``stats_from="train"`` to normalise as training
    does (``pipeline train`` does this). ``image={"pool": 4}`` (keys ``channels``, ``size``,
    ``pool``, ``transforms``) adds each jet's image ``[B, C, H, W]`` to the batches, scattered
    back from its points. Bad settings raise ``ValueError`` and a missing
    dataset ``FileNotFoundError``, with the CLI's message.
    """

    def __init__(
        self,
        dataset: PathLike,
        resolution: int,
        *,
        batch_size: Optional[int] = None,
        features: Optional[Sequence[Any]] = None,
        split: Union[None, str, Mapping[str, Any]] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        seed: Optional[int] = None,
        shuffle: Optional[bool] = None,
        neighbours: Optional[bool] = None,
        drop_last: Optional[bool] = None,
        reflect: Optional[Sequence[str]] = None,
        prefetch: Optional[int] = None,
        open_shards: Optional[int] = None,
        shuffle_buffer: Optional[int] = None,
        stats_fraction: Optional[float] = None,
        stats_from: Union[None, str, Mapping[str, Any]] = None,
        image: Optional[Mapping[str, Any]] = None,
    ):
        settings: Dict[str, Any] = {"dataset": os.fspath(dataset), "resolution": resolution}
        given = {
            "batch_size": batch_size,
            "features": None if features is None else [_feature(f) for f in features],
            "split": _split(split),
            "rank": rank,
            "world_size": world_size,
            "seed": seed,
            "shuffle": shuffle,
            "neighbours": neighbours,
            "drop_last": drop_last,
            "reflect": None if reflect is None else list(reflect),
            "prefetch": prefetch,
            "open_shards": open_shards,
            "shuffle_buffer": shuffle_buffer,
            "stats_fraction": stats_fraction,
            "image": None if image is None else dict(image),
        }
        settings.update({k: v for k, v in given.items() if v is not None})
        stats = _split(stats_from)
        try:
            text = json.dumps({"loader": settings}, default=_plain)
            stats_json = None if stats is None else json.dumps(stats, default=_plain)
        except TypeError as e:
            raise ValueError(f"jetpipe.Loader: {e}") from None
        self._open(_jetpipe.Loader(text, "jetpipe.Loader arguments", stats_json))

    @classmethod
    def from_yaml(cls, path: PathLike) -> "Loader":
        """Opens the loader a loader YAML describes (``loader:`` at the top, as for
        ``pipeline load``); errors name the file and line."""
        self = cls.__new__(cls)
        self._open(_jetpipe.Loader.from_yaml(os.fspath(path)))
        return self

    def _open(self, inner: "_jetpipe.Loader") -> None:
        self._inner = inner
        self.settings: Dict[str, Any] = json.loads(inner.settings_json())

    @property
    def jets(self) -> int:
        """Jets selected (all ranks, before ``drop_last``)."""
        return self._inner.jets

    @property
    def batches_per_epoch(self) -> int:
        """Batches this rank gets per epoch."""
        return self._inner.batches_per_epoch

    @property
    def k(self) -> int:
        """Neighbours per point in the batches (0 when not loaded)."""
        return self._inner.k

    @property
    def features(self) -> List[str]:
        """Feature columns, in the order of ``points``' last axis."""
        return self._inner.features

    @property
    def transforms(self) -> List[str]:
        """Each feature's resolved transforms (with the cached ``standardise`` statistics)."""
        return self._inner.transforms

    def __len__(self) -> int:
        return self._inner.batches_per_epoch

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"jetpipe.Loader({s['dataset']!r}, {s['resolution']}, batch_size={s['batch_size']}, "
            f"features={self.features}, jets={self.jets}, rank={s['rank']}/{s['world_size']}, k={self.k})"
        )

    def epoch(self, epoch: int = 0, *, worker: int = 0, workers: int = 1) -> Epoch:
        """Epoch ``epoch``'s batches (its order is a pure function of the settings, the seed
        and ``epoch``; pass a new ``epoch`` each time for a new shuffle). With ``workers > 1``
        only batches ``worker``, ``worker + workers``, … — one data-loading worker's share, so
        that the workers' batches taken in turn are exactly the epoch's."""
        if workers == 1 and worker == 0:
            return Epoch(self._inner.epoch(int(epoch)))
        part = (int(worker), int(workers))
        return Epoch(self._inner.epoch(int(epoch), part[0], part[1]), part)

    def resume(self, state: Union[Mapping[str, Any], str]) -> Epoch:
        """Continues from ``Epoch.state()`` (a dict, or its JSON text)."""
        text = state if isinstance(state, str) else json.dumps(dict(state))
        return Epoch(self._inner.resume(text))


def _plain(v: Any) -> Any:
    """numpy scalars and paths in loader arguments, as JSON values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    raise TypeError(f"{v!r} ({type(v).__name__}) is not a valid setting value")


def run(
    config: PathLike,
    *,
    output: Optional[PathLike] = None,
    limit: Optional[int] = None,
    offset: Optional[int] = None,
    threads: Optional[int] = None,
    writers: Optional[int] = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> Dict[str, Any]:
    """Converts a pipeline YAML's sources, as ``pipeline run CONFIG`` (same overrides).
    Returns the run summary (``output``, ``jets_written``, ``seconds``, ``summary`` text…)."""
    return _jetpipe.run(
        os.fspath(config),
        output=None if output is None else os.fspath(output),
        limit=limit,
        offset=offset,
        threads=threads,
        writers=writers,
        overwrite=overwrite,
        quiet=quiet,
    )


def sql(query: str, dataset: Union[PathLike, Sequence[PathLike], Mapping[str, PathLike]] = "."):
    """Runs a query with DataFusion over datasets (``pipeline sql``) into a ``pyarrow.Table``.

    ``dataset`` is a directory (tables ``jets`` and ``points``), a list of them, or
    ``{name: dir}`` (tables ``NAME_jets``, ``NAME_points``). Warnings (e.g. an incomplete
    dataset) are issued as ``UserWarning``.
    """
    import warnings

    import pyarrow as pa

    def unnamed(d: PathLike) -> str:
        # `pipeline sql -d` reads NAME=DIR; a directory whose name has `=` must not look so.
        p = os.fspath(d)
        return p if "=" not in p or os.path.isabs(p) else os.path.join(".", p)

    if isinstance(dataset, Mapping):
        refs = []
        for n, d in dataset.items():
            if not re.fullmatch(r"[A-Za-z0-9_]+", str(n)):
                raise ValueError(f"dataset name `{n}`: use letters, digits and _ (table names)")
            refs.append(f"{n}={os.fspath(d)}")
    elif isinstance(dataset, (str, os.PathLike)):
        refs = [unnamed(dataset)]
    else:
        refs = [unnamed(d) for d in dataset]
    data, notes = _jetpipe.sql_ipc(query, refs)
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return pa.ipc.open_stream(data).read_all()


def neighbour_mask(batch: Batch) -> np.ndarray:
    """``[B, R, k]`` bool: which neighbour entries are real (point real and j < knn_k)."""
    nb = batch["neighbours"]
    j = np.arange(nb.shape[2], dtype=np.int64)
    real_j = j[None, :] < batch["knn_k"].astype(np.int64)[:, None]  # [B, k]
    return (batch["mask"].astype(bool)[:, :, None]) & real_j[:, None, :]


def real_points(batch: Batch) -> Tuple[np.ndarray, np.ndarray]:
    """The real points of a batch, flattened jet by jet: ``x [N, F]`` and the jet of each
    point ``[N]`` (int64) — PyTorch Geometric's ``x`` and ``batch``."""
    m = batch["mask"].astype(bool)
    b = np.repeat(np.arange(m.shape[0], dtype=np.int64), batch["n_points"].astype(np.int64))
    return batch["points"][m], b


def edge_index(batch: Batch) -> np.ndarray:
    """``[2, E]`` int64 edges of the stored kNN graphs over ``real_points``' numbering, as
    PyTorch Geometric expects them: an edge ``j -> i`` (row 0 source, row 1 target) for each
    real neighbour j that point i lists, so the default ``source_to_target`` flow makes i
    aggregate its k neighbours."""
    nb = batch["neighbours"].astype(np.int64)
    B, R, k = nb.shape
    real = neighbour_mask(batch)
    offsets = np.concatenate([[0], np.cumsum(batch["n_points"].astype(np.int64))[:-1]])
    target = np.broadcast_to(np.arange(R, dtype=np.int64)[None, :, None], (B, R, k))
    src = (nb + offsets[:, None, None])[real]
    dst = (target + offsets[:, None, None])[real]
    return np.stack([src, dst])
