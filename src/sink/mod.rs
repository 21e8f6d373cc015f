//! Where converted batches go: Parquet shards grouped into work units.

pub mod dataset;
pub mod parquet;
