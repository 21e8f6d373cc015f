//! One resolution of a converted dataset, opened for reading: the `points/res=R/` shards the
//! manifest lists, their Parquet footers (read once), and row-group decoding
//! ([`crate::loader::decode`]).

use crate::error::{Error, Result};
use crate::loader::decode::{Decoded, Wanted, decode};
use crate::loader::plan::RowGroup;
use crate::store::manifest::{Manifest, Status};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A shard and its footer.
struct Shard {
    path: PathBuf,
    meta: ArrowReaderMetadata,
}

/// The `points` table of one resolution.
pub struct PointsDataset {
    dir: PathBuf,
    res: u32,
    shards: Vec<Shard>,
    schema: SchemaRef,
    k: Option<usize>,
    manifest: Manifest,
}

impl PointsDataset {
    /// Opens `dir` (a dataset written by `pipeline run`) at resolution `res`. The run must be
    /// complete; every shard the manifest lists must be readable.
    pub fn open(dir: &Path, res: u32) -> Result<Self> {
        let out = |msg: String| Error::Output {
            path: dir.to_path_buf(),
            msg,
        };
        let manifest = Manifest::read(dir)?.ok_or_else(|| {
            out("no manifest.json: not a dataset written by `pipeline run`".into())
        })?;
        if manifest.status != Status::Complete {
            return Err(out(format!(
                "the run that writes this dataset is {:?}, not complete: finish it (`pipeline run` resumes) before loading",
                manifest.status
            )));
        }
        let resolutions: Vec<u64> = manifest.config["stages"]["pointcloud"]["resolutions"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        if !resolutions.contains(&u64::from(res)) {
            return Err(out(format!(
                "resolution {res} not in this dataset (it has {resolutions:?})"
            )));
        }
        let k = manifest.config["stages"]["knn"]["k"]
            .as_u64()
            .map(|k| k as usize);
        let prefix = format!("points/res={res}/");
        let mut shards = Vec::new();
        for unit in &manifest.units {
            for s in unit.shards.iter().filter(|s| s.path.starts_with(&prefix)) {
                let path = dir.join(&s.path);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let meta =
                    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
                        Error::Output {
                            path: path.clone(),
                            msg: format!("unreadable Parquet footer: {e}"),
                        }
                    })?;
                if meta.metadata().file_metadata().num_rows() as u64 != s.rows {
                    return Err(Error::Output {
                        path,
                        msg: format!(
                            "{} rows, the manifest says {}: run `pipeline verify`",
                            meta.metadata().file_metadata().num_rows(),
                            s.rows
                        ),
                    });
                }
                shards.push(Shard { path, meta });
            }
        }
        let schema = shards
            .first()
            .map(|s| s.meta.schema().clone())
            .ok_or_else(|| out(format!("no shards under {prefix}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            res,
            shards,
            schema,
            k,
            manifest,
        })
    }

    /// The dataset directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The resolution.
    pub fn res(&self) -> u32 {
        self.res
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Neighbours per point, when the dataset stores kNN graphs.
    pub fn knn_k(&self) -> Option<usize> {
        self.k.filter(|_| self.schema.index_of("knn").is_ok())
    }

    /// The Arrow schema of the shards.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Every row group, shards in manifest order.
    pub fn row_groups(&self) -> Vec<RowGroup> {
        let mut out = Vec::new();
        for (s, shard) in self.shards.iter().enumerate() {
            for (i, rg) in shard.meta.metadata().row_groups().iter().enumerate() {
                out.push(RowGroup {
                    shard: s as u32,
                    index: i as u32,
                    rows: rg.num_rows() as u32,
                });
            }
        }
        out
    }

    /// Column `name`'s position in the schema, or an error naming the columns there are.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.schema.index_of(name).map_err(|_| Error::Output {
            path: self.dir.join(format!("points/res={}", self.res)),
            msg: format!(
                "no column `{name}` in the points table (columns: {})",
                self.schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Decodes the loader's columns of one row group (see [`crate::loader::decode`]).
    pub fn decode(&self, rg: RowGroup, want: &Wanted) -> Result<Decoded> {
        let shard = &self.shards[rg.shard as usize];
        decode(&shard.path, shard.meta.metadata(), rg, want)
    }

    /// The jet ids of every row group (for the train/validation/test split).
    pub fn jet_ids(&self) -> Result<Vec<Vec<u64>>> {
        let ids_only = Wanted {
            features: Vec::new(),
            k: None,
        };
        self.row_groups()
            .into_iter()
            .map(|rg| Ok(self.decode(rg, &ids_only)?.jet_ids))
            .collect()
    }
}
