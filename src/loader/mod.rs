//! The sharded loader: Parquet `points/res=R/` shards → shuffled, rank-sharded, resumable,
//! padded batches of plain buffers (framework-neutral; models turn them into tensors).
//!
//! ```no_run
//! # fn main() -> jetpipe::Result<()> {
//! use jetpipe::loader::{Loader, LoaderSpec};
//! let mut spec = LoaderSpec::new("out/qg1024", 1024);
//! spec.batch_size = 256;
//! let loader = Loader::open(&spec)?;
//! let mut epoch = loader.epoch(0)?;
//! while let Some(batch) = epoch.next() {
//!     let batch = batch?; // batch.points [B, R, F], batch.mask [B, R], batch.labels [B], …
//!     let state = epoch.state(); // save with the checkpoint; Loader::resume(&state) continues
//!     loader.recycle(batch);
//! }
//! # Ok(()) }
//! ```
//!
//! The order of an epoch is a pure function of the settings and (seed, epoch): see [`plan`].

pub mod batch;
pub mod dataset;
pub mod decode;
pub mod npy;
pub mod plan;
pub mod prefetch;
pub mod preprocess;
pub mod spec;

pub use batch::Batch;
pub use spec::{FeatureSpec, LoaderSpec, SplitSpec, Subset};

use crate::error::{Error, Result};
use batch::Assembler;
use crossbeam::channel::{Receiver, Sender, bounded};
use dataset::PointsDataset;
use decode::Wanted;
use plan::{Layout, Shuffle};
use prefetch::{Job, Prefetch};
use preprocess::{Op, StatsScope};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where a loader stands: save it with a checkpoint, pass it to [`Loader::resume`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// Hash of the settings and dataset that fix the batch sequence.
    pub identity: String,
    /// Shuffle seed.
    pub seed: u64,
    /// Epoch number.
    pub epoch: u64,
    /// Batches of this epoch already served.
    pub batches: usize,
}

/// An opened loader (cheap to iterate many epochs).
pub struct Loader {
    spec: LoaderSpec,
    ds: Arc<PointsDataset>,
    layout: Layout,
    want: Arc<Wanted>,
    asm: Arc<Assembler>,
    identity: String,
    pool: (Sender<Batch>, Receiver<Batch>),
    batches_per_epoch: usize,
}

impl Loader {
    /// Opens the dataset, applies the split, resolves transforms (computing and caching
    /// `standardise` statistics in the manifest when missing) and checks that every rank
    /// gets at least one batch.
    pub fn open(spec: &LoaderSpec) -> Result<Self> {
        let ds = PointsDataset::open(&spec.dataset, spec.resolution)?;
        let row_groups = ds.row_groups();
        let kept: Vec<Vec<u32>> = match &spec.split {
            None => row_groups.iter().map(|g| (0..g.rows).collect()).collect(),
            Some(split) => ds
                .jet_ids()?
                .iter()
                .map(|ids| {
                    (0..ids.len() as u32)
                        .filter(|&i| split.keeps(ids[i as usize]))
                        .collect()
                })
                .collect(),
        };
        let layout = Layout {
            row_groups,
            kept,
            shards: ds.shards(),
        };
        let mut names: Vec<String> = spec
            .features
            .iter()
            .map(|f| f.column().to_string())
            .collect();
        // The image view's columns are decoded after the features: row, col, the channels.
        let image_first = names.len();
        if let Some(img) = &spec.image {
            names.extend(["row".to_string(), "col".to_string()]);
            names.extend(img.channels.iter().cloned());
        }
        for n in names
            .iter()
            .map(String::as_str)
            .chain(["jet_id", "label", "n_points"])
            .filter(|n| !decode::is_derived(n))
        {
            ds.column(n)?;
        }
        let k = ds.knn_k().filter(|_| spec.neighbours);
        let ops = resolve_ops(&ds, spec)?;
        let ds = Arc::new(ds);
        let n = layout.len();
        let batches_per_epoch = plan::rank_batches(
            n,
            spec.rank,
            spec.world_size,
            spec.batch_size,
            spec.drop_last,
        )
        .map_err(|e| Error::Loader(format!("{}: {e}", spec.dataset.display())))?
        .len();
        let identity = identity(&ds, spec);
        let prefetch = spec.prefetch;
        Ok(Self {
            spec: spec.clone(),
            want: Arc::new(Wanted { features: names, k }),
            asm: Arc::new(image_view(
                Assembler::new(
                    spec.resolution as usize,
                    k.unwrap_or(0),
                    ops,
                    spec.features
                        .iter()
                        .map(|f| spec.reflect.iter().any(|r| r == f.column()))
                        .collect(),
                    spec.seed,
                ),
                spec,
                image_first,
            )?),
            ds,
            layout,
            identity,
            pool: bounded(2 * prefetch + 4),
            batches_per_epoch,
        })
    }

    /// The settings.
    pub fn spec(&self) -> &LoaderSpec {
        &self.spec
    }

    /// Jets selected (all ranks, before drop_last).
    pub fn jets(&self) -> usize {
        self.layout.len()
    }

    /// Batches this rank gets per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// Neighbours per point in the batches (0 when not loaded).
    pub fn knn_k(&self) -> usize {
        self.asm.k
    }

    /// The resolved transforms of each feature.
    pub fn ops(&self) -> &[Vec<Op>] {
        &self.asm.ops
    }

    /// The dataset.
    pub fn dataset(&self) -> &PointsDataset {
        &self.ds
    }

    /// Epoch `epoch` from its first batch.
    pub fn epoch(&self, epoch: u64) -> Result<Epoch> {
        self.resume(&LoaderState {
            identity: self.identity.clone(),
            seed: self.spec.seed,
            epoch,
            batches: 0,
        })
    }

    /// Continues where `state` stood: exactly the batches an uninterrupted loader would
    /// have served next.
    pub fn resume(&self, state: &LoaderState) -> Result<Epoch> {
        self.start(state, 0, 1)
    }

    /// Batches `part`, `part + parts`, `part + 2·parts`, … of this rank's epoch `epoch`: what
    /// one of `parts` data-loading worker processes serves (PyTorch's DataLoader workers),
    /// so that taking the parts' batches in turn gives exactly [`Loader::epoch`]'s. Each part
    /// decodes only the row groups its batches use. The state of such an epoch counts its
    /// own batches and is not for [`Loader::resume`].
    pub fn epoch_part(&self, epoch: u64, part: usize, parts: usize) -> Result<Epoch> {
        if parts == 0 || part >= parts {
            return Err(Error::Loader(format!(
                "part {part} of {parts}: need 0 <= part < parts"
            )));
        }
        let state = LoaderState {
            identity: self.identity.clone(),
            seed: self.spec.seed,
            epoch,
            batches: 0,
        };
        self.start(&state, part, parts)
    }

    fn start(&self, state: &LoaderState, part: usize, parts: usize) -> Result<Epoch> {
        if state.identity != self.identity || state.seed != self.spec.seed {
            return Err(Error::Loader(format!(
                "{}: the loader state was saved with other loader settings or another dataset (state {}, now {}); resume needs the same ones",
                self.spec.dataset.display(),
                state.identity,
                self.identity
            )));
        }
        let s = &self.spec;
        let shuffle = s.shuffle.then_some(Shuffle {
            seed: s.seed,
            open_shards: s.open_shards,
            buffer: s.shuffle_buffer,
        });
        let order = plan::epoch_order(&self.layout, shuffle, state.epoch);
        let all = plan::rank_batches(order.len(), s.rank, s.world_size, s.batch_size, s.drop_last)
            .map_err(|e| Error::Loader(e.to_string()))?;
        let from = state.batches.min(all.len());
        let last = all.last().map_or(0, |r| r.end);
        let first = all.get(from).map_or(last, |r| r.start);
        let samples = order[first..last].to_vec();
        let batches = (all[from..].iter().enumerate())
            .filter(|(i, _)| i % parts == part)
            .map(|(_, r)| r.start - first..r.end - first)
            .collect();
        let job = Job {
            ds: self.ds.clone(),
            want: self.want.clone(),
            asm: self.asm.clone(),
            row_groups: self.layout.row_groups.clone(),
            samples,
            batches,
            pool: self.pool.1.clone(),
            epoch: state.epoch,
        };
        Ok(Epoch {
            prefetch: Prefetch::start(job, s.prefetch),
            state: LoaderState {
                batches: from,
                ..state.clone()
            },
            failed: false,
        })
    }

    /// Gives a consumed batch's buffers back for reuse (saves allocation and page faults).
    pub fn recycle(&self, batch: Batch) {
        let _ = self.pool.0.try_send(batch);
    }
}

/// One epoch's batches, in order; [`Epoch::state`] after any batch resumes right after it.
pub struct Epoch {
    prefetch: Prefetch,
    state: LoaderState,
    failed: bool,
}

impl Epoch {
    /// The state after the batches served so far.
    pub fn state(&self) -> LoaderState {
        self.state.clone()
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.failed {
            return None; // after an error the state could no longer describe the stream
        }
        let b = self.prefetch.next()?;
        match b {
            Ok(_) => self.state.batches += 1,
            Err(_) => self.failed = true,
        }
        Some(b)
    }
}

/// `asm` with the image view of `spec` (its columns decoded from index `first`), if any.
fn image_view(asm: Assembler, spec: &LoaderSpec, first: usize) -> Result<Assembler> {
    let Some(img) = &spec.image else {
        return Ok(asm);
    };
    let ops = preprocess::resolve(&img.transforms, &mut |_, _| {
        Err(Error::Loader(
            "image transforms take no dataset statistics".into(),
        ))
    })?;
    Ok(asm.with_image(batch::ImageView {
        first,
        size: img.size.map(|s| s as usize),
        pool: img.pool as usize,
        dims: img.dims(),
        ops,
    }))
}

/// The ops of every feature; `standardise` statistics from the manifest cache, or computed
/// and added to it.
fn resolve_ops(ds: &PointsDataset, spec: &LoaderSpec) -> Result<Vec<Vec<Op>>> {
    let scope = StatsScope {
        fraction: spec.stats_fraction,
    };
    let stats_jets = spec.stats_from.as_ref().or(spec.split.as_ref());
    let split_name = stats_jets
        .map(|s| serde_json::to_string(s).expect("split serialises"))
        .unwrap_or_else(|| "all".into());
    let mut added = Vec::new();
    let mut out = Vec::new();
    for f in &spec.features {
        let ops = preprocess::resolve(f.transforms(), &mut |before, ops| {
            let key = preprocess::stats_key(ds.res(), f.column(), before, scope, &split_name);
            if let Some(s) = ds.manifest().stats.get(&key) {
                return Ok(*s);
            }
            if let Some((_, s)) = added.iter().find(|(k, _)| *k == key) {
                return Ok(*s);
            }
            let keep = |id: u64| stats_jets.is_none_or(|s| s.keeps(id));
            let s = preprocess::compute_stats(ds, f.column(), ops, scope, &keep)?;
            added.push((key, s));
            Ok(s)
        })?;
        out.push(ops);
    }
    if !added.is_empty() {
        // Re-read so that statistics another rank cached meanwhile are kept.
        let mut m = crate::store::manifest::Manifest::read(ds.dir())?
            .unwrap_or_else(|| ds.manifest().clone());
        m.stats.extend(added);
        m.write(ds.dir())?;
    }
    Ok(out)
}

/// Hash of everything that fixes the batch sequence.
fn identity(ds: &PointsDataset, spec: &LoaderSpec) -> String {
    let mut s = spec.clone();
    s.prefetch = 0;
    s.dataset = Default::default();
    let m = ds.manifest();
    let json = serde_json::to_vec(&(
        &s,
        &m.config_hash,
        m.units.iter().map(|u| &u.shards).collect::<Vec<_>>(),
    ))
    .expect("serialises");
    let hex = format!("{:x}", Sha256::digest(&json));
    format!("sha256:{}", &hex[..16])
}
