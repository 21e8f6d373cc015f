//! `jetpipe.run` and `jetpipe.sql`: `pipeline run` and `pipeline sql` as functions, through
//! the same library calls as the CLI. The GIL is released while they work.

use crate::py_err;
use arrow::ipc::writer::StreamWriter;
use jetpipe::cli::run::{RunArgs, configure};
use jetpipe::engine::{RunOptions, run as run_pipeline};
use jetpipe::sql::{DatasetRef, Sql};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::PathBuf;

/// Converts a pipeline YAML's sources (as `pipeline run`); returns the run summary as a dict.
#[pyfunction]
#[pyo3(signature = (config, *, output=None, limit=None, offset=None, threads=None, writers=None, overwrite=false, quiet=true))]
#[allow(clippy::too_many_arguments)]
pub fn run(
    py: Python<'_>,
    config: PathBuf,
    output: Option<PathBuf>,
    limit: Option<u64>,
    offset: Option<u64>,
    threads: Option<usize>,
    writers: Option<usize>,
    overwrite: bool,
    quiet: bool,
) -> PyResult<Bound<'_, PyDict>> {
    let args = RunArgs {
        config,
        limit,
        offset,
        threads,
        writers,
        profile: false,
        output,
        overwrite,
        part: None,
        quiet,
    };
    let summary = py
        .detach(move || {
            let cfg = configure(&args)?;
            let opts = RunOptions {
                part: None,
                overwrite: args.overwrite,
                quiet: args.quiet,
            };
            run_pipeline(&cfg, &opts)
        })
        .map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("output", summary.output.display().to_string())?;
    d.set_item("jets_converted", summary.jets_converted)?;
    d.set_item("jets_written", summary.totals.jets_written)?;
    d.set_item("jets_rejected", summary.totals.jets_rejected)?;
    d.set_item("units_kept", summary.units_kept)?;
    d.set_item("bytes", summary.totals.bytes)?;
    d.set_item("seconds", summary.seconds)?;
    d.set_item("threads", summary.threads)?;
    d.set_item("summary", summary.to_string())?;
    Ok(d)
}

/// Runs one SQL query over datasets (`DIR` or `NAME=DIR`, as `pipeline sql -d`) and returns
/// the result as an Arrow IPC stream (the Python side reads it with pyarrow), plus warnings.
#[pyfunction]
pub fn sql_ipc<'py>(
    py: Python<'py>,
    query: String,
    datasets: Vec<String>,
) -> PyResult<(Bound<'py, PyBytes>, Vec<String>)> {
    let (bytes, warnings) = py
        .detach(move || -> jetpipe::Result<_> {
            let refs: Vec<DatasetRef> = (datasets.iter())
                .map(|d| d.parse().expect("DatasetRef parsing is infallible"))
                .collect();
            let session = Sql::open(&refs)?;
            let (schema, batches) = session.query(&query)?;
            let mut out = Vec::new();
            let mut w = StreamWriter::try_new(&mut out, &schema)?;
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            Ok((out, session.warnings))
        })
        .map_err(py_err)?;
    Ok((PyBytes::new(py, &bytes), warnings))
}
