//! Sources of jets. Today: HDF5 jet-image files (CMS E2E, ML4Sci e/γ and similar).

pub mod chunks;
mod hdf5;
pub use hdf5::open_read_only;

pub use self::hdf5::{Hdf5Source, ImageGeometry, RawJets, SourceFile, expand_files, mtime_ns};
