"""Read jetpipe datasets from Python (pyarrow + numpy; torch optional).

A jetpipe dataset is a directory written by ``pipeline run``: ``manifest.json`` plus Parquet
shards under ``points/res=R/``. This module turns one resolution into the same padded arrays
as the Rust loader (``jetpipe::loader``) gives for a sequential read (``shuffle: false``):

    points     float32 [B, R, F]  features of each point, zero-padded
    mask       uint8   [B, R]     1 for a real point
    labels     int8    [B]        the source's ``y`` (-1 where absent)
    jet_ids    uint64  [B]        join key with the ``jets`` table
    n_points   uint16  [B]
    neighbours uint16  [B, R, k]  kNN indices; padding = the point's own index
    knn_k      uint16  [B]        neighbour j of point p is real iff mask[b, p] and j < knn_k[b]

Features are returned as stored: the loader YAML's transforms (log1p, scale, clip,
jet_fraction, standardise) and ``reflect`` are not applied here (``standardise_stats`` gives
the cached statistics). The derived feature ``point_index`` (the point's position in the
jet, 0 … n−1) is supported, as in the Rust loader.
``read_all`` reads each shard once; ``batch(i)`` (and so ``JetpipeIterable``) re-reads the
shards a batch touches, which suits random access rather than whole epochs.

Batches run across shard boundaries, shards in manifest order. Rank slicing (``rank``,
``world_size``, ``drop_last``) follows the Rust plan exactly, and the train/val/test split uses
the same jet-id hash (``split_unit``), so both languages select the same jets.

Example (PyTorch)::

    from jetpipe_reader import JetpipeIterable
    ds = JetpipeIterable("out/qg1024", 1024, batch_size=256)
    for batch in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
        x, m, y = batch["points"], batch["mask"], batch["labels"]

Edge index for PyTorch Geometric: see ``edge_index`` below.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq

MASK64 = (1 << 64) - 1


def mix64(z):
    """The SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_unit(jet_ids, seed=0):
    """Position of each jet in [0, 1) for the hash split (same as Rust ``plan::split_unit``)."""
    s = mix64(np.uint64(seed & MASK64))
    h = mix64(np.asarray(jet_ids, dtype=np.uint64) ^ s)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_mask(jet_ids, subset, train=0.8, val=0.1, seed=0):
    """Boolean mask of the jets in ``subset`` ('train', 'val' or 'test')."""
    u = split_unit(jet_ids, seed)
    if subset == "train":
        return u < train
    if subset == "val":
        return (u >= train) & (u < train + val)
    if subset == "test":
        return u >= train + val
    raise ValueError(f"subset must be train, val or test, not {subset!r}")


def rank_batches(n, rank, world, batch, drop_last):
    """(start, stop) of each batch of one rank in the epoch order (Rust ``plan::rank_batches``)."""
    if drop_last:
        per = n // world // batch * batch
        if per == 0:
            raise ValueError(f"{n} jets selected, but every rank needs a batch ({world * batch})")
        start = rank * per
        return [(start + i * batch, start + (i + 1) * batch) for i in range(per // batch)]
    if n < world:
        raise ValueError(f"{n} jets selected, fewer than world_size {world}")
    q, extra = divmod(n, world)
    mine = q + (rank < extra)
    start = rank * q + min(rank, extra)
    most = q + (extra > 0)
    count = -(-most // batch)
    sizes = [batch] * count
    last = mine - (count - 1) * batch
    if last > 0:
        sizes[-1] = last
    elif batch >= 2:
        sizes[-2], sizes[-1] = batch - 1, 1
    else:
        raise ValueError("batch_size 1 with drop_last false needs jets divisible by world_size")
    out, at = [], start
    for s in sizes:
        out.append((at, at + s))
        at += s
    return out


def read_manifest(dataset):
    with open(os.path.join(dataset, "manifest.json")) as f:
        m = json.load(f)
    if m.get("status") != "complete":
        raise ValueError(f"{dataset}: the run is {m.get('status')}, not complete")
    return m


def shard_paths(dataset, res):
    """The points shards of resolution ``res`` in manifest order."""
    m = read_manifest(dataset)
    if res not in m["config"]["stages"]["pointcloud"]["resolutions"]:
        raise ValueError(f"{dataset}: resolution {res} not in the dataset")
    prefix = f"points/res={res}/"
    return [
        os.path.join(dataset, s["path"])
        for u in m["units"]
        for s in u["shards"]
        if s["path"].startswith(prefix)
    ]


def standardise_stats(dataset, res, column):
    """(median, p16, p84) cached by the Rust loader for ``column`` at ``res`` (one entry)."""
    stats = read_manifest(dataset).get("stats", {})
    hits = [v for k, v in stats.items() if k.startswith(f"res={res} column={column} ")]
    if len(hits) != 1:
        raise KeyError(f"{len(hits)} cached statistics for {column} at res={res}")
    return hits[0]["median"], hits[0]["p16"], hits[0]["p84"]


class JetpipeReader:
    """Sequential padded batches of one resolution (see the module doc)."""

    def __init__(self, dataset, resolution, features=("tracks", "ecal", "hcal", "eta", "phi"),
                 batch_size=256, neighbours=True, rank=0, world_size=1, drop_last=False,
                 split=None):
        self.dataset, self.res = dataset, int(resolution)
        self.features, self.batch_size = list(features), int(batch_size)
        self.paths = shard_paths(dataset, self.res)
        m = read_manifest(dataset)
        knn = m["config"]["stages"].get("knn")
        schema = pq.read_schema(self.paths[0])
        self.k = int(knn["k"]) if (neighbours and knn and "knn" in schema.names) else 0
        ids = np.concatenate([pq.read_table(p, columns=["jet_id"])["jet_id"].to_numpy()
                              for p in self.paths])
        keep = np.ones(len(ids), bool) if split is None else split_mask(ids, **split)
        self.rows = np.flatnonzero(keep)  # positions in the concatenated shards
        self.batches = rank_batches(len(self.rows), rank, world_size, self.batch_size, drop_last)

    def __len__(self):
        return len(self.batches)

    def _columns(self):
        cols = ["jet_id", "label", "n_points"] + [f for f in self.features if f != "point_index"]
        if self.k:
            cols += ["knn", "knn_k"]
        return list(dict.fromkeys(cols))

    def _tables(self, first, last):
        """Rows ``self.rows[first:last]`` read shard by shard as one table."""
        import pyarrow as pa

        want = self.rows[first:last]
        tables, base = [], 0
        for p in self.paths:
            n = pq.read_metadata(p).num_rows
            sel = want[(want >= base) & (want < base + n)] - base
            if len(sel):
                t = pq.read_table(p, columns=self._columns())
                tables.append(t.take(pa.array(sel)))
            base += n
        return pa.concat_tables(tables)

    def batch(self, i, table=None):
        """Batch ``i`` of this rank as a dict of numpy arrays."""
        start, stop = self.batches[i]
        t = self._tables(start, stop) if table is None else table
        return self._pad(t)

    def _pad(self, t):
        b, r, f, k = t.num_rows, self.res, len(self.features), self.k
        n = t["n_points"].to_numpy().astype(np.int64)
        if (n > r).any():
            raise ValueError(f"a jet has more than {r} points")
        starts = np.zeros(b + 1, np.int64)
        starts[1:] = np.cumsum(n)
        point = np.arange(starts[-1]) - np.repeat(starts[:-1], n)  # point index within its jet
        jet = np.repeat(np.arange(b), n)
        out = {
            "points": np.zeros((b, r, f), np.float32),
            "mask": np.zeros((b, r), np.uint8),
            "labels": t["label"].fill_null(-1).to_numpy().astype(np.int8),
            "jet_ids": t["jet_id"].to_numpy().astype(np.uint64),
            "n_points": n.astype(np.uint16),
        }
        for j, name in enumerate(self.features):
            if name == "point_index":
                out["points"][jet, point, j] = point.astype(np.float32)
                continue
            col = t[name].combine_chunks()
            out["points"][jet, point, j] = col.flatten().to_numpy().astype(np.float32)
        out["mask"][jet, point] = 1
        if k:
            nb = np.broadcast_to(np.arange(r, dtype=np.uint16)[None, :, None], (b, r, k)).copy()
            flat = t["knn"].combine_chunks().flatten().to_numpy().reshape(-1, k)
            nb[jet, point] = flat
            out["neighbours"] = nb
            out["knn_k"] = t["knn_k"].to_numpy().astype(np.uint16)
        return out

    def __iter__(self):
        for i in range(len(self.batches)):
            yield self.batch(i)

    def read_all(self):
        """Every batch of this rank, reading each shard once (faster than batch-by-batch)."""
        if not self.batches:
            return
        first, last = self.batches[0][0], self.batches[-1][1]
        t = self._tables(first, last)
        for start, stop in self.batches:
            yield self._pad(t.slice(start - first, stop - start))


def edge_index(batch):
    """PyTorch Geometric ``edge_index`` (2 × E, source → target, int64) of a padded batch.

    Nodes are numbered jet by jet over real points only (node = offset of the jet + point),
    as ``torch_geometric.data.Batch`` numbers them; an edge j → i means j is one of i's k
    nearest neighbours (flow ``source_to_target``, like PyG ``knn_graph``). Padded neighbours
    and padding points are dropped.
    """
    nb, mask, kk = batch["neighbours"], batch["mask"].astype(bool), batch["knn_k"]
    b, r, k = nb.shape
    offset = np.zeros(b, np.int64)
    offset[1:] = np.cumsum(batch["n_points"].astype(np.int64))[:-1]
    real = mask[:, :, None] & (np.arange(k)[None, None, :] < kk[:, None, None])
    jb, pi, _ = np.nonzero(real)
    src = offset[jb] + nb[real].astype(np.int64)
    dst = offset[jb] + pi
    return np.stack([src, dst])


try:  # torch is optional
    import torch.utils.data as _tud

    class JetpipeIterable(_tud.IterableDataset):
        """``torch.utils.data.IterableDataset`` over a rank's batches (``batch_size=None`` in
        the DataLoader); DataLoader workers take every ``num_workers``-th batch."""

        def __init__(self, *args, **kwargs):
            super().__init__()
            self.reader = JetpipeReader(*args, **kwargs)

        def __iter__(self):
            info = _tud.get_worker_info()
            w, nw = (0, 1) if info is None else (info.id, info.num_workers)
            for i in range(w, len(self.reader), nw):
                yield self.reader.batch(i)

except ImportError:  # pragma: no cover
    pass
