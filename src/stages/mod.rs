//! CPU stages that turn a batch of jet images into Arrow record batches. They run fused in
//! one worker pass per batch: the point cloud selects each jet's points, then the kNN stage
//! builds their graphs while the points are hot in cache.

pub mod features;
pub mod knn;
pub mod pointcloud;
