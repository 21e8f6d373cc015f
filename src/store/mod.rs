//! The on-disk dataset: table schemas (the data contract) and the manifest.

pub mod manifest;
pub mod tables;
