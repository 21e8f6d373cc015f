//! The integration tests, as one test binary: each module is one area (conversion, bad
//! input, faults, features, direct reads, loader and its image view, CLI, Python, training, graph layers, generative models,
//! and with a GPU feature the GPU code path). One binary links
//! jetpipe with DataFusion, Burn and HDF5 once instead of once per area (issue 25).

mod bad_input;
mod cli;
mod common;
mod conversion;
mod direct_read;
mod faults;
mod features;
#[cfg(feature = "train")]
mod generative;
#[cfg(feature = "train")]
mod gnn;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod gpu;
mod image_view;
mod loader;
mod python;
#[cfg(feature = "train")]
mod train;
#[cfg(feature = "train")]
mod train_models;
