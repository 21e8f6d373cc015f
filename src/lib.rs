//! jetpipe: streaming conversion of HEP jet-image HDF5 files into Arrow/Parquet point clouds.
//!
//! Layers, each depending only on those below it:
//! `cli` → `config`, `engine`, `sql`, `loader` → `stages`, `source`, `sink` → `store`, `batch`.

pub mod batch;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fault;
pub mod loader;
pub mod plot;
pub mod profile;
pub mod sink;
pub mod source;
pub mod sql;
pub mod stages;
pub mod store;
#[cfg(feature = "train")]
pub mod train;

pub use error::{Error, Result};
