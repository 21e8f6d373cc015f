//! `jetpipe._jetpipe`: the compiled half of the Python package. It wraps the Rust library
//! (no second implementation): the loader ([`loader`]), the conversion and SQL
//! ([`commands`]). The Python package `jetpipe/` adds keyword arguments, docstrings and the
//! PyTorch helpers on top.

mod commands;
mod loader;

use pyo3::exceptions::{
    PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

/// A jetpipe error as the Python exception a caller expects, with the message the CLI prints.
/// Failed file operations follow their I/O error kind (`FileNotFoundError`,
/// `PermissionError`, otherwise `OSError`); a dataset directory or source file that does not
/// exist is `FileNotFoundError`; a bad setting or input `ValueError`; anything else
/// (training, internal failures) `RuntimeError`.
pub(crate) fn py_err(e: jetpipe::Error) -> PyErr {
    use jetpipe::Error as E;
    use std::io::ErrorKind;
    let msg = e.to_string();
    let missing = |p: &std::path::Path| !p.as_os_str().is_empty() && !p.exists();
    match &e {
        E::Io { source, .. } | E::ConfigFile { source, .. } => match source.kind() {
            ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        E::Output { path, .. } if missing(path) => PyFileNotFoundError::new_err(msg),
        E::Source { file, .. } if missing(file) => PyFileNotFoundError::new_err(msg),
        _ if e.exit_code() == 2 => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// The extension module.
#[pymodule]
fn _jetpipe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<loader::Loader>()?;
    m.add_class::<loader::Epoch>()?;
    m.add_function(wrap_pyfunction!(commands::run, m)?)?;
    m.add_function(wrap_pyfunction!(commands::sql_ipc, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
