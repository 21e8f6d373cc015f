//! SQL over jetpipe datasets with DataFusion: one session, the datasets' tables registered
//! (`jets`, `points` with its Hive partition column `res`), and the scalar functions
//! physicists need that DataFusion lacks (`delta_r`).

mod udf;

use crate::error::{Error, Result};
use crate::store::manifest::{Manifest, Status};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use std::path::{Path, PathBuf};

/// A dataset to register, optionally under a name (tables become `<name>_jets`, ...).
#[derive(Debug, Clone)]
pub struct DatasetRef {
    /// Prefix of the table names; `None` registers `jets` and `points`.
    pub name: Option<String>,
    /// Dataset directory.
    pub dir: PathBuf,
}

impl std::str::FromStr for DatasetRef {
    type Err = String;
    /// `DIR` or `NAME=DIR`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once('=') {
            Some((n, d))
                if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(Self {
                    name: Some(n.to_string()),
                    dir: d.into(),
                })
            }
            _ => Ok(Self {
                name: None,
                dir: s.into(),
            }),
        }
    }
}

/// A session with datasets registered.
pub struct Sql {
    ctx: SessionContext,
    rt: tokio::runtime::Runtime,
    /// Registered tables with their contracts from the manifest, in registration order.
    pub tables: Vec<(String, crate::store::tables::TableDoc)>,
    /// Notes for the user (e.g. incomplete datasets).
    pub warnings: Vec<String>,
}

fn df_err(context: &str) -> impl Fn(datafusion::error::DataFusionError) -> Error + '_ {
    move |source| Error::Sql {
        context: context.to_string(),
        source,
    }
}

impl Sql {
    /// Opens a session over `datasets`.
    pub fn open(datasets: &[DatasetRef]) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let ctx = SessionContext::new();
        ctx.register_udf(udf::delta_r());
        let mut s = Self {
            ctx,
            rt,
            tables: Vec::new(),
            warnings: Vec::new(),
        };
        for d in datasets {
            s.register(d)?;
        }
        Ok(s)
    }

    fn register(&mut self, d: &DatasetRef) -> Result<()> {
        let prefix = d.name.as_ref().map_or(String::new(), |n| format!("{n}_"));
        let predictions = predictions_files(&d.dir);
        if Manifest::read(&d.dir)?.is_none() && !predictions.is_empty() {
            // A training run directory: its `pipeline eval` outputs, `predictions` and one
            // `predictions_T` per `--tag T`.
            for (table, file) in predictions {
                let name = format!("{prefix}{table}");
                let path = file.display().to_string();
                self.rt
                    .block_on(self.ctx.register_parquet(
                        name.as_str(),
                        &path,
                        ParquetReadOptions::default(),
                    ))
                    .map_err(df_err(&format!("registering {path}")))?;
                self.tables
                    .push((name, crate::store::tables::predictions_doc()));
            }
            return Ok(());
        }
        let m = Manifest::read(&d.dir)?.ok_or_else(|| Error::Output {
            path: d.dir.clone(),
            msg: "no manifest.json: not a jetpipe dataset or training run with predictions (pass --dataset DIR)".into(),
        })?;
        if m.status != Status::Complete {
            self.warnings.push(format!(
                "{}: dataset status is {:?}: tables hold only its complete units",
                d.dir.display(),
                m.status
            ));
        }
        for (table, entry) in &m.tables {
            let path = format!("{}/{table}/", d.dir.display());
            let mut opts = ParquetReadOptions::default();
            if let Some(col) = &entry.schema.partitioned_by {
                opts = opts.table_partition_cols(vec![(col.clone(), DataType::Int32)]);
            }
            let name = format!("{prefix}{table}");
            self.rt
                .block_on(self.ctx.register_parquet(name.as_str(), &path, opts))
                .map_err(df_err(&format!("registering {path}")))?;
            self.tables.push((name, entry.schema.clone()));
        }
        Ok(())
    }

    /// Runs one query and collects its result.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.rt.block_on(async {
            let df = self.ctx.sql(sql).await.map_err(df_err("query"))?;
            let schema: SchemaRef = df.schema().inner().clone();
            let batches = df.collect().await.map_err(df_err("query"))?;
            Ok((schema, batches))
        })
    }
}

/// The dataset used when none is given: the current directory.
pub fn default_dataset() -> DatasetRef {
    DatasetRef {
        name: None,
        dir: Path::new(".").to_path_buf(),
    }
}

/// `(table, file)` of a run directory's `predictions.parquet` and `predictions_T.parquet`
/// files (`pipeline eval [--tag T]`), sorted by table name.
fn predictions_files(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let table = name.strip_suffix(".parquet")?;
            let ok = table == "predictions"
                || table
                    .strip_prefix("predictions_")
                    .is_some_and(crate::store::tables::is_predictions_tag);
            ok.then(|| (table.to_string(), e.path()))
        })
        .collect();
    out.sort();
    out
}
