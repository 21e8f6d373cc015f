//! The loader's YAML section (`loader:` of a training YAML, or a file of its own for
//! `pipeline load`): serde with unknown keys refused, garde for value ranges.

use crate::config::{parse_yaml, read_yaml};
use crate::error::Result;
use crate::loader::preprocess::Transform;
use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct LoaderSpec {
    /// Dataset directory written by `pipeline run` (relative paths: from the working directory).
    #[garde(skip)]
    pub dataset: PathBuf,
    /// Resolution to load (one of the dataset's `resolutions`); jets are padded to it.
    #[garde(range(min = 1, max = 65535))]
    pub resolution: u32,
    /// Per-point features in order: a column name, or `{column: NAME, transforms: [...]}`.
    /// Besides the points table's columns, `point_index` is derived: the point's position
    /// in the energy order (0 … n−1), e.g. `{column: point_index, transforms: [{scale: 0.001}]}`.
    #[serde(default = "default_features")]
    #[garde(length(min = 1, max = 64), dive)]
    pub features: Vec<FeatureSpec>,
    /// Jets per batch.
    #[serde(default = "default_batch_size")]
    #[garde(range(min = 1, max = 1_000_000))]
    pub batch_size: usize,
    /// Seed of the shuffle (the split has its own).
    #[serde(default)]
    #[garde(skip)]
    pub seed: u64,
    /// Shuffle shards, row groups and jets each epoch.
    #[serde(default = "yes")]
    #[garde(skip)]
    pub shuffle: bool,
    /// Shards whose row groups are interleaved.
    #[serde(default = "default_open_shards")]
    #[garde(range(min = 1, max = 1024))]
    pub open_shards: usize,
    /// Jets per shuffle window (memory: about this many decoded jets, plus two row groups).
    #[serde(default = "default_shuffle_buffer")]
    #[garde(range(min = 1))]
    pub shuffle_buffer: usize,
    /// This process's rank.
    #[serde(default)]
    #[garde(custom(|r: &usize, _: &()| rank_below(*r, self.world_size)))]
    pub rank: usize,
    /// Number of ranks.
    #[serde(default = "one")]
    #[garde(range(min = 1, max = 65536))]
    pub world_size: usize,
    /// Serve only full batches (see the plan module for the exact rule).
    #[serde(default)]
    #[garde(skip)]
    pub drop_last: bool,
    /// Threads that decode and assemble batches ahead of the consumer.
    #[serde(default = "default_prefetch")]
    #[garde(range(min = 1, max = 64))]
    pub prefetch: usize,
    /// Augmentation: each listed feature column is negated (before its transforms) for a
    /// random half of the jets, independently per column, jet and epoch — for the centred
    /// coordinates `eta` and `phi`, a reflection of the jet about its axis. The sign is a hash
    /// of (seed, epoch, jet id, column), so resumed runs see the same. Training only:
    /// validation and evaluation load the jets as stored.
    #[serde(default)]
    #[garde(custom(|r: &Vec<String>, _: &()| reflect_features(r, &self.features)))]
    pub reflect: Vec<String>,
    /// Load the kNN neighbour lists (when the dataset has them).
    #[serde(default = "yes")]
    #[garde(skip)]
    pub neighbours: bool,
    /// Train/validation/test split by jet-id hash; absent: every jet.
    #[serde(default)]
    #[garde(dive)]
    pub split: Option<SplitSpec>,
    /// Jets the `standardise` statistics come from when not the selected ones (training
    /// runs set the training split, so validation and evaluation reuse its statistics).
    #[serde(skip)]
    #[schemars(skip)]
    #[garde(skip)]
    pub stats_from: Option<SplitSpec>,
    /// Fraction of the selected jets that `standardise` statistics are computed over.
    #[serde(default = "default_stats_fraction")]
    #[garde(range(min = 0.000001, max = 1.0))]
    pub stats_fraction: f64,
    /// Also serve each jet as an image `[C, H, W]` (the batch's `image`), scattered back from
    /// its stored points: exact for jets with at most `resolution` hits. No second copy of
    /// the images is stored.
    #[serde(default)]
    #[garde(dive)]
    pub image: Option<ImageSpec>,
}

/// The image view of the points (`image:` of the loader YAML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Channel columns of the points table, in the image's channel order.
    #[serde(default = "default_channels")]
    #[garde(length(min = 1, max = 64), inner(length(min = 1)))]
    pub channels: Vec<String>,
    /// The source images' height and width in pixels (the points' `row` < height, `col` <
    /// width; 125 × 125 for the CMS E2E files).
    #[serde(default = "default_image_size")]
    #[garde(custom(|s: &[u32; 2], _: &()| image_size(s)))]
    pub size: [u32; 2],
    /// Sum-pool `pool × pool` pixel blocks (1: none): the image is ⌈H/pool⌉ × ⌈W/pool⌉, e.g.
    /// 125 → 63 for 2 or 32 for 4 (the last block of a row or column is partial).
    #[serde(default = "one_u32")]
    #[garde(range(min = 1, max = 256))]
    pub pool: u32,
    /// Element-wise transforms of every pixel after pooling, in order: `log1p`, `{scale: f}`,
    /// `{clip: [lo, hi]}`, and last `{zero: v}` with v < 0 (empty pixels to v) (the per-jet
    /// and dataset-statistics transforms do not apply).
    #[serde(default)]
    #[garde(custom(|t: &Vec<Transform>, _: &()| pixelwise(t)))]
    pub transforms: Vec<Transform>,
}

impl ImageSpec {
    /// `[C, H, W]` of the served images.
    pub fn dims(&self) -> [usize; 3] {
        let p = self.pool as usize;
        [
            self.channels.len(),
            (self.size[0] as usize).div_ceil(p),
            (self.size[1] as usize).div_ceil(p),
        ]
    }
}

fn default_channels() -> Vec<String> {
    ["tracks", "ecal", "hcal"].map(String::from).to_vec()
}
fn default_image_size() -> [u32; 2] {
    [125, 125]
}
fn one_u32() -> u32 {
    1
}

fn image_size(s: &[u32; 2]) -> garde::Result {
    if s.iter().all(|&x| (1..=4096).contains(&x)) {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "image size {s:?}: each side must be 1 to 4096 pixels"
        )))
    }
}

fn pixelwise(t: &[Transform]) -> garde::Result {
    match t
        .iter()
        .find(|t| matches!(t, Transform::JetFraction | Transform::Standardise))
    {
        Some(t) => Err(garde::Error::new(format!(
            "{} does not apply to images: use log1p, scale, clip or zero",
            serde_json::to_string(t)
                .unwrap_or_default()
                .trim_matches('"')
        ))),
        None => zero_last(t),
    }
}

/// `{zero: v}` in an image's transforms: the last one, with v < 0, so empty pixels lie below
/// every hit and generated images map back to energies (anything ≤ 0 is an empty pixel).
fn zero_last(t: &[Transform]) -> garde::Result {
    match t.iter().position(|t| matches!(t, Transform::Zero(_))) {
        None => Ok(()),
        Some(i) => match t[i] {
            Transform::Zero(v) if i + 1 == t.len() && v < 0.0 => Ok(()),
            _ => Err(garde::Error::new(
                "{zero: v} must be the last image transform, with v < 0".to_string(),
            )),
        },
    }
}

/// A feature and its transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(untagged)]
pub enum FeatureSpec {
    /// A per-point column, as stored.
    Column(#[garde(length(min = 1))] String),
    /// A column with transforms.
    Transformed {
        /// Per-point column of the points table.
        #[garde(length(min = 1))]
        column: String,
        /// Applied in order.
        #[serde(default)]
        #[garde(skip)]
        transforms: Vec<Transform>,
    },
}

impl FeatureSpec {
    /// The column.
    pub fn column(&self) -> &str {
        match self {
            FeatureSpec::Column(c) | FeatureSpec::Transformed { column: c, .. } => c,
        }
    }

    /// The transforms.
    pub fn transforms(&self) -> &[Transform] {
        match self {
            FeatureSpec::Column(_) => &[],
            FeatureSpec::Transformed { transforms, .. } => transforms,
        }
    }
}

/// Which part of a train/validation/test split to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Subset {
    /// The training jets.
    Train,
    /// The validation jets.
    Val,
    /// The test jets.
    Test,
}

/// A deterministic split by jet-id hash (identical in the Python reader).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
#[garde(allow_unvalidated)]
pub struct SplitSpec {
    /// Fraction of jets for training.
    #[serde(default = "default_train")]
    #[garde(range(min = 0.0, max = 1.0))]
    pub train: f64,
    /// Fraction for validation (the rest is test).
    #[serde(default = "default_val")]
    #[garde(range(min = 0.0, max = 1.0), custom(|v: &f64, _: &()| fractions(self.train, *v)))]
    pub val: f64,
    /// Seed of the hash.
    #[serde(default)]
    pub seed: u64,
    /// The part to load.
    pub subset: Subset,
}

impl SplitSpec {
    /// Whether `jet_id` belongs to the chosen subset.
    pub fn keeps(&self, jet_id: u64) -> bool {
        let u = crate::loader::plan::split_unit(jet_id, self.seed);
        match self.subset {
            Subset::Train => u < self.train,
            Subset::Val => u >= self.train && u < self.train + self.val,
            Subset::Test => u >= self.train + self.val,
        }
    }
}

fn reflect_features(reflect: &[String], features: &[FeatureSpec]) -> garde::Result {
    for (i, r) in reflect.iter().enumerate() {
        if !features.iter().any(|f| f.column() == r) {
            return Err(garde::Error::new(format!(
                "`{r}` is not one of the features"
            )));
        }
        if reflect[..i].contains(r) {
            return Err(garde::Error::new(format!("`{r}` is listed twice")));
        }
    }
    Ok(())
}

fn rank_below(rank: usize, world: usize) -> garde::Result {
    if rank < world {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "rank {rank} is not below world_size {world}"
        )))
    }
}

fn fractions(train: f64, val: f64) -> garde::Result {
    if train + val <= 1.0 + 1e-12 {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "train + val = {} exceeds 1",
            train + val
        )))
    }
}

fn default_features() -> Vec<FeatureSpec> {
    ["tracks", "ecal", "hcal", "eta", "phi"]
        .map(|c| FeatureSpec::Column(c.into()))
        .to_vec()
}
fn default_batch_size() -> usize {
    256
}
fn default_open_shards() -> usize {
    4
}
fn default_shuffle_buffer() -> usize {
    4096
}
fn default_prefetch() -> usize {
    2
}
fn default_stats_fraction() -> f64 {
    0.25
}
fn default_train() -> f64 {
    0.8
}
fn default_val() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}

/// A loader YAML file: `loader:` at the top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct LoaderFile {
    /// The loader settings.
    #[garde(dive)]
    pub loader: LoaderSpec,
}

/// Parses loader YAML text; errors name `origin`, line and column.
pub fn parse_loader(text: &str, origin: &str) -> Result<LoaderSpec> {
    parse_yaml::<LoaderFile>(text, origin, "loader").map(|f| f.loader)
}

/// Reads a loader YAML file.
pub fn load_loader(path: &std::path::Path) -> Result<LoaderSpec> {
    parse_loader(&read_yaml(path, "loader")?, &path.display().to_string())
}

impl LoaderSpec {
    /// Default settings for `dataset` at `resolution`.
    pub fn new(dataset: impl Into<PathBuf>, resolution: u32) -> Self {
        parse_loader(
            &format!(
                "loader:\n  dataset: {:?}\n  resolution: {resolution}\n",
                dataset.into().display().to_string()
            ),
            "defaults",
        )
        .expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_transforms_and_split_parses() {
        let s = parse_loader(
            "loader:\n  dataset: out/x\n  resolution: 256\n  features:\n    - eta\n    - column: tracks\n      transforms: [log1p, standardise, {clip: [-5, 5]}, {scale: 2}]\n  split: {train: 0.7, val: 0.2, subset: val}\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(s.features[0], FeatureSpec::Column("eta".into()));
        assert_eq!(
            s.features[1].transforms(),
            [
                Transform::Log1p,
                Transform::Standardise,
                Transform::Clip([-5.0, 5.0]),
                Transform::Scale(2.0)
            ]
        );
        let sp = s.split.unwrap();
        assert_eq!((sp.train, sp.val, sp.subset), (0.7, 0.2, Subset::Val));
        assert_eq!((s.batch_size, s.world_size, s.shuffle), (256, 1, true));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = parse_loader(
            "loader:\n  dataset: out/x\n  resolution: 256\n  batchsize: 3\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.yaml:4") && e.contains("batchsize"), "{e}");
        let e = parse_loader(
            "loader:\n  dataset: out/x\n  resolution: 256\n  world_size: 2\n  rank: 2\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.yaml:5") && e.contains("not below world_size"),
            "{e}"
        );
        let e = parse_loader(
            "loader:\n  dataset: out/x\n  resolution: 256\n  split: {train: 0.9, val: 0.2, subset: train}\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.yaml:4") && e.contains("exceeds 1"), "{e}");
    }
}
