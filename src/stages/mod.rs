//! CPU stages that turn a batch of jet images into Arrow record batches.

pub mod pointcloud;
