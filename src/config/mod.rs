//! Pipeline YAML: the typed configuration of a run.
//!
//! These structs are the single source of truth for the YAML format: serde reads them
//! (unknown keys are errors), garde checks value ranges (errors point at the YAML line),
//! and schemars turns them into `schemas/pipeline.schema.json`. Every field has a default
//! documented in its doc comment; the config knows nothing about threads or files on disk
//! beyond their names.

mod features;
mod load;
mod validate;

pub use features::{FeatureGroup, FeaturesConfig};
pub use load::{LoadedConfig, load_config, parse_config, parse_yaml, read_yaml};

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A whole pipeline: where jets come from, what is computed, where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name; recorded in the manifest and shown in progress output.
    #[garde(length(min = 1), custom(validate::identifier))]
    pub name: String,
    /// The HDF5 jet-image input.
    #[garde(dive)]
    pub source: SourceConfig,
    /// Processing stages. Default: a point-cloud stage with default settings.
    #[serde(default)]
    #[garde(dive, custom(|s: &StagesConfig, _: &()| validate::stages(s, &self.source.channels)))]
    pub stages: StagesConfig,
    /// The Parquet output dataset.
    #[garde(dive)]
    pub sink: SinkConfig,
    /// Threads and queues. Never changes the output bytes, so it is not part of the config hash.
    #[serde(default)]
    #[garde(dive)]
    pub engine: EngineConfig,
}

/// HDF5 files holding jet images and optional per-jet scalars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Input files: paths or glob patterns, relative to the working directory. Matches of one
    /// pattern are taken in sorted order; a pattern that matches nothing is an error. Required.
    #[garde(length(min = 1))]
    pub files: Vec<String>,
    /// Names of the datasets inside each file. Default: `X_jets`, `pt`, `m0`, `y`.
    #[serde(default)]
    #[garde(dive)]
    pub datasets: DatasetNames,
    /// Memory layout of the image dataset. Default: `nhwc` (jets, rows, columns, channels).
    #[serde(default)]
    #[garde(skip)]
    pub layout: Layout,
    /// One name per image channel, in file order; they become the point columns.
    /// Default: `[tracks, ecal, hcal]` (the CMS E2E quark/gluon images).
    #[serde(default = "default_channels")]
    #[garde(length(min = 1, max = 64), custom(validate::channel_names))]
    pub channels: Vec<String>,
    /// Channels whose values may be negative (e.g. hit times); all others must be >= 0.
    /// Every value must be finite. Default: `[]`.
    #[serde(default)]
    #[garde(custom(|v: &Vec<String>, _: &()| validate::subset_of(v, &self.channels)))]
    pub signed_channels: Vec<String>,
    /// Allowed label values; any other value in the label dataset is an error. Labels are
    /// stored as given by the file: no polarity is assumed. Default: `[0, 1]`.
    #[serde(default = "default_labels")]
    #[garde(length(min = 1), custom(validate::unique_labels))]
    pub labels: Vec<i8>,
    /// What to do with a jet that has a NaN, infinite or negative pixel. Default: `error`.
    #[serde(default)]
    #[garde(skip)]
    pub on_invalid: OnInvalid,
    /// Skip this many jets at the start of the (concatenated) input. Default: 0.
    #[serde(default)]
    #[garde(skip)]
    pub offset: u64,
    /// Convert at most this many jets. Default: null (all).
    #[serde(default)]
    #[garde(skip)]
    pub limit: Option<u64>,
}

/// Dataset names inside an HDF5 file. Set a scalar to `null` when the file lacks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct DatasetNames {
    /// Image dataset, rank 4, float32 or float64. Default: `X_jets`.
    #[serde(default = "default_images")]
    #[garde(length(min = 1))]
    pub images: String,
    /// Jet transverse momentum, shape (N,). Default: `pt`; `null` when absent.
    #[serde(default = "default_pt")]
    #[garde(skip)]
    pub pt: Option<String>,
    /// Jet mass, shape (N,). Default: `m0`; `null` when absent.
    #[serde(default = "default_m0")]
    #[garde(skip)]
    pub m0: Option<String>,
    /// Class label, shape (N,), integer-valued. Default: `y`; `null` when absent.
    #[serde(default = "default_label")]
    #[garde(skip)]
    pub label: Option<String>,
}

/// Axis order of the image dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// (jets, rows, columns, channels): the CMS E2E files.
    #[default]
    Nhwc,
    /// (jets, channels, rows, columns).
    Nchw,
}

/// Policy for pixels that are NaN, infinite or negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Stop with an error naming file, jet index, pixel and channel.
    #[default]
    Error,
    /// Leave the jet out of every table; it is counted and listed in the manifest.
    SkipJet,
    /// Set the offending pixel values to zero; counted in the manifest.
    Zero,
}

/// The stages that run on every jet, in this fixed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    /// Image → point cloud at several resolutions.
    #[serde(default)]
    #[garde(dive)]
    pub pointcloud: PointCloudConfig,
    /// k-nearest-neighbour graph of every jet at every resolution. Default: on, with default
    /// settings; `null` turns it off.
    #[serde(default = "default_knn")]
    #[garde(dive)]
    pub knn: Option<KnnConfig>,
    /// Jet-level features in the `jets` table. Default: on, every group; `null` turns them off.
    #[serde(default = "default_features")]
    #[garde(dive)]
    pub features: Option<FeaturesConfig>,
}

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            pointcloud: PointCloudConfig::default(),
            knn: default_knn(),
            features: default_features(),
        }
    }
}

fn default_features() -> Option<FeaturesConfig> {
    Some(FeaturesConfig::default())
}

fn default_knn() -> Option<KnnConfig> {
    Some(KnnConfig::default())
}

/// kNN graph settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct KnnConfig {
    /// Neighbours per point, 1..=256. Default: 16.
    #[serde(default = "default_k")]
    #[garde(range(min = 1, max = 256))]
    pub k: usize,
    /// Per-point columns that span the metric space: `eta`, `phi`, `row`, `col` or channel
    /// names, at most 8. Default: `[eta, phi]`, computed exactly on the pixel grid.
    #[serde(default = "default_knn_coordinates")]
    #[garde(length(min = 1, max = 8))]
    pub coordinates: Vec<String>,
    /// Multiplier per coordinate (e.g. to scale energies against angles). Default: null (all 1).
    #[serde(default)]
    #[garde(skip)]
    pub scales: Option<Vec<f32>>,
    /// Metric. Only `euclidean` today. Default: `euclidean`.
    #[serde(default)]
    #[garde(skip)]
    pub metric: KnnMetric,
    /// Whether a point is its own first neighbour (PyG `loop=True`). Default: false.
    #[serde(default)]
    #[garde(skip)]
    pub include_self: bool,
    /// Also store `knn_dist`, the distance to each neighbour. Default: false.
    #[serde(default)]
    #[garde(skip)]
    pub distances: bool,
}

/// Distance between points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KnnMetric {
    /// Square root of the sum of squared coordinate differences.
    #[default]
    Euclidean,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self {
            k: default_k(),
            coordinates: default_knn_coordinates(),
            scales: None,
            metric: KnnMetric::default(),
            include_self: false,
            distances: false,
        }
    }
}

fn default_k() -> usize {
    16
}

fn default_knn_coordinates() -> Vec<String> {
    vec!["eta".into(), "phi".into()]
}

/// How pixels are ranked when more than R are hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// Sum over channels of value² (the e2e_sparse rule).
    #[default]
    SumSq,
    /// Sum over channels of value.
    Sum,
}

/// Which physical coordinate the image rows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RowAxis {
    /// Rows are η, columns are φ (CMS E2E images).
    #[default]
    Eta,
    /// Rows are φ, columns are η.
    Phi,
}

/// Image → point-cloud conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct PointCloudConfig {
    /// A pixel is a point when any channel is strictly greater than this. Default: 0.
    #[serde(default)]
    #[garde(custom(validate::finite))]
    pub threshold: f32,
    /// Ranking of hit pixels; ties are broken by the tie key (a hash of the pixel index).
    /// Default: `sum_sq`.
    #[serde(default)]
    #[garde(skip)]
    pub rank_by: RankBy,
    /// Point counts R to keep (the top R ranked pixels), strictly increasing, each 1..=65535.
    /// Each resolution is a prefix of the next. Default: `[256, 512, 768, 1024]`.
    #[serde(default = "default_resolutions")]
    #[garde(length(min = 1, max = 16), custom(validate::resolutions))]
    pub resolutions: Vec<u32>,
    /// Pixel pitch in η and φ; the image centre is the jet axis. Default: 0.0174 (an ECAL crystal).
    #[serde(default = "default_pixel_size")]
    #[garde(custom(validate::positive))]
    pub pixel_size: f32,
    /// Which coordinate the image rows follow. Default: `eta`.
    #[serde(default)]
    #[garde(skip)]
    pub row_axis: RowAxis,
    /// Channels that enter the rank score (e.g. energies but not times). Default: null (all).
    /// Must name channels of `source.channels`.
    #[serde(default)]
    #[garde(skip)]
    pub rank_channels: Option<Vec<String>>,
}

impl Default for PointCloudConfig {
    fn default() -> Self {
        Self {
            threshold: 0.0,
            rank_by: RankBy::default(),
            resolutions: default_resolutions(),
            pixel_size: default_pixel_size(),
            row_axis: RowAxis::default(),
            rank_channels: None,
        }
    }
}

/// The Parquet dataset written by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Output directory, relative to the working directory. Required.
    #[garde(skip)]
    pub path: PathBuf,
    /// Jets per work unit; a unit is one shard per table. Default: 4096.
    #[serde(default = "default_shard_size")]
    #[garde(range(min = 1))]
    pub shard_size: u64,
    /// Jets per Parquet row group (what a loader reads at a time). Default: 1024.
    #[serde(default = "default_row_group_size")]
    #[garde(range(min = 1))]
    pub row_group_size: usize,
    /// zstd compression level, 1..=22. Default: 3.
    #[serde(default = "default_zstd_level")]
    #[garde(range(min = 1, max = 22))]
    pub zstd_level: i32,
}

/// Execution settings: they change speed and memory, never the output bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Worker threads for the CPU stages (point selection, kNN, features); 0 = the cores
    /// not given to `writers` (at least one). Default: 0.
    #[serde(default)]
    #[garde(range(max = 1024))]
    pub threads: usize,
    /// Writer threads, each encoding one unit's Parquet shards at a time (units are
    /// independent files, so the bytes do not depend on this); 0 = half the cores (at least
    /// one). Default: 0.
    #[serde(default)]
    #[garde(range(max = 1024))]
    pub writers: usize,
    /// Jets per batch travelling between stages, 1..=16384. Default: 64.
    #[serde(default = "default_batch_size")]
    #[garde(range(min = 1, max = 16384))]
    pub batch_size: u64,
    /// Batches buffered between two stages; peak memory ≈ batch size × queue depth. Default: 4.
    #[serde(default = "default_queue_depth")]
    #[garde(range(min = 1, max = 1024))]
    pub queue_depth: usize,
    /// Who inflates gzip image chunks: `workers` reads the compressed chunks directly and
    /// inflates them on the worker threads (in parallel) when the dataset allows it (chunks of
    /// whole images, deflate with optional shuffle, little-endian floats), falling back to the
    /// library otherwise; `library` always lets the HDF5 library read (one core). Never
    /// changes the output. Default: workers.
    #[serde(default)]
    #[garde(skip)]
    pub inflate: Inflate,
}

/// Where gzip image chunks are inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Inflate {
    /// Raw chunk reads, inflated in parallel on the workers (when the dataset allows it).
    #[default]
    Workers,
    /// The HDF5 library's own read, serialised on the reader thread.
    Library,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            writers: 0,
            batch_size: default_batch_size(),
            queue_depth: default_queue_depth(),
            inflate: Inflate::default(),
        }
    }
}

impl Default for DatasetNames {
    fn default() -> Self {
        Self {
            images: default_images(),
            pt: default_pt(),
            m0: default_m0(),
            label: default_label(),
        }
    }
}

fn default_channels() -> Vec<String> {
    vec!["tracks".into(), "ecal".into(), "hcal".into()]
}
fn default_labels() -> Vec<i8> {
    vec![0, 1]
}
fn default_images() -> String {
    "X_jets".into()
}
fn default_pt() -> Option<String> {
    Some("pt".into())
}
fn default_m0() -> Option<String> {
    Some("m0".into())
}
fn default_label() -> Option<String> {
    Some("y".into())
}
fn default_resolutions() -> Vec<u32> {
    vec![256, 512, 768, 1024]
}
fn default_pixel_size() -> f32 {
    0.0174
}
fn default_shard_size() -> u64 {
    4096
}
fn default_row_group_size() -> usize {
    1024
}
fn default_zstd_level() -> i32 {
    3
}
fn default_batch_size() -> u64 {
    64
}
fn default_queue_depth() -> usize {
    4
}

impl PipelineConfig {
    /// The JSON Schema of the YAML format (what `schemas/pipeline.schema.json` holds).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(PipelineConfig)).expect("schema serialises")
    }
}
