"""HDF5 helpers: the exact CMS E2E dataset layout, written without timestamps.

Quark/gluon schema (as in quark-gluon_data-set_n139306.hdf5):
    X_jets  float32 (N, 125, 125, 3)  chunks (1, 125, 125, 3), gzip
    m0      float32 (N,)
    pt      float32 (N,)
    y       float32 (N,)
e/gamma schema (ML4Sci single-particle crops):
    X       float32 (N, 32, 32, 2)    chunks (1, 32, 32, 2), gzip
    y       float32 (N,)

Every object is created with track_times=False so that two runs with the same
seed give byte-identical files (HDF5 otherwise stores modification times in
object headers).
"""
from __future__ import annotations

import h5py
import numpy as np


def open_new(path: str) -> h5py.File:
    # The root group is created by the library; no timestamps are stored for it
    # unless the file-creation property list asks for them (checked in tests).
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fid = h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)
    return h5py.File(fid)


def image_dataset(f: h5py.File, name: str, shape: tuple, level: int) -> h5py.Dataset:
    return f.create_dataset(name, shape=shape, dtype=np.float32,
                            chunks=(1,) + tuple(shape[1:]),
                            compression="gzip" if level > 0 else None,
                            compression_opts=level if level > 0 else None,
                            track_times=False)


def vector_dataset(f: h5py.File, name: str, data: np.ndarray) -> h5py.Dataset:
    return f.create_dataset(name, data=np.asarray(data, dtype=np.float32), track_times=False)


def create_qg(f: h5py.File, n: int, level: int) -> h5py.Dataset:
    return image_dataset(f, "X_jets", (n, 125, 125, 3), level)


def write_qg_vectors(f: h5py.File, m0, pt, y) -> None:
    vector_dataset(f, "m0", m0)
    vector_dataset(f, "pt", pt)
    vector_dataset(f, "y", y)
