//! `Loader` and `Epoch` for Python: `jetpipe::loader` itself, its batches handed to numpy
//! without a copy (each buffer becomes the array's memory), and the GIL released while a
//! batch is awaited, so the Rust prefetch threads and a Python training step overlap.

use crate::py_err;
use jetpipe::loader::{self as rs, Batch, LoaderState};
use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Arc, Mutex};

/// An opened loader: settings validated, split applied, transforms resolved.
#[pyclass(module = "jetpipe._jetpipe", frozen)]
pub struct Loader {
    inner: Arc<rs::Loader>,
}

#[pymethods]
impl Loader {
    /// Opens a loader from the text of a loader YAML (or JSON) document with `loader:` at the
    /// top; `origin` names it in error messages. `stats_from` (JSON of a split) names the jets
    /// whose `standardise` statistics to use, as training runs set the training split's for
    /// validation.
    #[new]
    #[pyo3(signature = (text, origin, stats_from=None))]
    fn new(py: Python<'_>, text: &str, origin: &str, stats_from: Option<&str>) -> PyResult<Self> {
        let mut spec = rs::spec::parse_loader(text, origin).map_err(py_err)?;
        if let Some(json) = stats_from {
            let split: rs::SplitSpec = serde_json::from_str(json)
                .map_err(|e| PyValueError::new_err(format!("stats_from: {e}")))?;
            spec.stats_from = Some(split);
        }
        open(py, spec)
    }

    /// Opens a loader from a loader YAML file (`pipeline load`'s argument).
    #[staticmethod]
    fn from_yaml(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let spec = rs::spec::load_loader(&path).map_err(py_err)?;
        open(py, spec)
    }

    /// The validated settings, defaults filled in, as JSON.
    fn settings_json(&self) -> String {
        serde_json::to_string(self.inner.spec()).expect("settings serialise")
    }

    /// Jets selected (all ranks, before `drop_last`).
    #[getter]
    fn jets(&self) -> usize {
        self.inner.jets()
    }

    /// Batches this rank gets per epoch.
    #[getter]
    fn batches_per_epoch(&self) -> usize {
        self.inner.batches_per_epoch()
    }

    /// Neighbours per point in the batches (0 when not loaded).
    #[getter]
    fn k(&self) -> usize {
        self.inner.knn_k()
    }

    /// Feature column names, in the order of the points' last axis.
    #[getter]
    fn features(&self) -> Vec<String> {
        (self.inner.spec().features.iter())
            .map(|f| f.column().to_string())
            .collect()
    }

    /// The resolved transforms of each feature (with `standardise` statistics), as text.
    #[getter]
    fn transforms(&self) -> Vec<String> {
        self.inner.ops().iter().map(|o| format!("{o:?}")).collect()
    }

    /// Epoch `epoch` from its first batch; with `parts > 1` only batches `part`,
    /// `part + parts`, … (one DataLoader worker's share).
    #[pyo3(signature = (epoch, part=0, parts=1))]
    fn epoch(&self, py: Python<'_>, epoch: u64, part: usize, parts: usize) -> PyResult<Epoch> {
        let inner = self.inner.clone();
        let it = py
            .detach(move || inner.epoch_part(epoch, part, parts))
            .map_err(py_err)?;
        Ok(Epoch::new(it))
    }

    /// Continues from a state (JSON) that `Epoch.state_json` returned: exactly the batches an
    /// uninterrupted loader would have served next.
    fn resume(&self, py: Python<'_>, state_json: &str) -> PyResult<Epoch> {
        let state: LoaderState = serde_json::from_str(state_json)
            .map_err(|e| PyValueError::new_err(format!("not a loader state: {e}")))?;
        let inner = self.inner.clone();
        let it = py.detach(move || inner.resume(&state)).map_err(py_err)?;
        Ok(Epoch::new(it))
    }
}

fn open(py: Python<'_>, spec: rs::LoaderSpec) -> PyResult<Loader> {
    // Opening may compute `standardise` statistics over the shards: without the GIL.
    let inner = py.detach(move || rs::Loader::open(&spec)).map_err(py_err)?;
    Ok(Loader {
        inner: Arc::new(inner),
    })
}

/// One epoch's batches: an iterator of dicts of numpy arrays.
#[pyclass(module = "jetpipe._jetpipe", frozen)]
pub struct Epoch {
    inner: Mutex<rs::Epoch>,
}

impl Epoch {
    fn new(it: rs::Epoch) -> Self {
        Self {
            inner: Mutex::new(it),
        }
    }
}

#[pymethods]
impl Epoch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let next = py.detach(|| self.inner.lock().expect("epoch lock").next());
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(py_err(e)),
            Some(Ok(b)) => batch_dict(py, b).map(Some),
        }
    }

    /// Where the loader stands after the batches served so far, as JSON (pass it to
    /// `Loader.resume`).
    fn state_json(&self, py: Python<'_>) -> String {
        // Another thread may hold the lock while it waits for a batch: wait without the GIL.
        let state = py.detach(|| self.inner.lock().expect("epoch lock").state());
        serde_json::to_string(&state).expect("state serialises")
    }
}

/// The batch's buffers as numpy arrays (moved, not copied) under the Rust loader's names.
fn batch_dict(py: Python<'_>, b: Batch) -> PyResult<Bound<'_, PyDict>> {
    let (n, r, f, k) = (b.size, b.res, b.features, b.k);
    let d = PyDict::new(py);
    d.set_item("points", b.points.into_pyarray(py).reshape([n, r, f])?)?;
    d.set_item("mask", b.mask.into_pyarray(py).reshape([n, r])?)?;
    d.set_item("labels", b.labels.into_pyarray(py))?;
    d.set_item("jet_ids", b.jet_ids.into_pyarray(py))?;
    d.set_item("n_points", b.n_points.into_pyarray(py))?;
    if k > 0 {
        d.set_item(
            "neighbours",
            b.neighbours.into_pyarray(py).reshape([n, r, k])?,
        )?;
        d.set_item("knn_k", b.knn_k.into_pyarray(py))?;
    }
    if !b.image.is_empty() {
        let [c, h, w] = b.image_dims;
        d.set_item("image", b.image.into_pyarray(py).reshape([n, c, h, w])?)?;
    }
    Ok(d)
}
