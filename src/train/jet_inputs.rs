//! Jet-level inputs from the `jets` table: a dataset's numeric jet columns (pt, m0, hit counts,
//! channel sums and fractions, widths, pT_D, …), the ones a run selects (`jet_inputs`),
//! standardised with the training split's mean and standard deviation (kept as
//! `RUN/normalisation.json`, so evaluation scales the same way), and looked up by jet id for a
//! batch of the loader. The features baseline is trained on them; point-cloud models can take
//! them beside their points.

use crate::error::{Error, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Int8Type, UInt64Type};
use burn::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashMap;
use std::path::Path;

/// Columns of the `jets` table that are identifiers or labels, never inputs.
pub const NOT_FEATURES: &[&str] = &["jet_id", "source_file", "source_index", "label"];

/// The `jets` table as a feature matrix.
pub struct JetFeatures {
    /// Feature names.
    pub names: Vec<String>,
    /// Row-major `[jets, features]`; a null or non-finite value reads as 0.
    pub x: Vec<f32>,
    /// Labels (−1 where absent).
    pub labels: Vec<i8>,
    /// Jet ids.
    pub ids: Vec<u64>,
}

/// Reads every numeric feature column of the `jets` table of `dir`.
pub fn read_jets(dir: &Path) -> Result<JetFeatures> {
    let m = crate::store::manifest::Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.to_path_buf(),
        msg: "no manifest.json".into(),
    })?;
    let mut out = JetFeatures {
        names: Vec::new(),
        x: Vec::new(),
        labels: Vec::new(),
        ids: Vec::new(),
    };
    for s in m
        .units
        .iter()
        .flat_map(|u| &u.shards)
        .filter(|s| s.path.starts_with("jets/"))
    {
        let path = dir.join(&s.path);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        for b in ParquetRecordBatchReaderBuilder::try_new(f)?.build()? {
            let b = b?;
            let schema = b.schema();
            let cols: Vec<usize> = (0..b.num_columns())
                .filter(|&i| {
                    let f = schema.field(i);
                    !NOT_FEATURES.contains(&f.name().as_str()) && f.data_type().is_numeric()
                })
                .collect();
            let names: Vec<String> = cols
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect();
            if out.ids.is_empty() && out.names.is_empty() {
                out.names = names;
            } else if names != out.names {
                return Err(Error::Output {
                    path: path.clone(),
                    msg: format!(
                        "its numeric columns [{}] differ from the first shard's [{}]",
                        names.join(", "),
                        out.names.join(", ")
                    ),
                });
            }
            let cast: Vec<_> = cols
                .iter()
                .map(|&i| arrow::compute::cast(b.column(i), &DataType::Float32))
                .collect::<std::result::Result<_, _>>()?;
            for row in 0..b.num_rows() {
                for c in &cast {
                    let a = c.as_primitive::<Float32Type>();
                    let v = if a.is_null(row) { 0.0 } else { a.value(row) };
                    out.x.push(if v.is_finite() { v } else { 0.0 });
                }
            }
            let bad_type = |c: &str| Error::Output {
                path: path.clone(),
                msg: format!(
                    "column `{c}` does not have the contract's type (schemas/jets.schema.json)"
                ),
            };
            let labels = match b.column_by_name("label") {
                None => None,
                Some(c) => Some(
                    c.as_primitive_opt::<Int8Type>()
                        .ok_or_else(|| bad_type("label"))?
                        .clone(),
                ),
            };
            for row in 0..b.num_rows() {
                out.labels.push(
                    labels
                        .as_ref()
                        .map_or(-1, |l| if l.is_null(row) { -1 } else { l.value(row) }),
                );
            }
            let ids = b
                .column_by_name("jet_id")
                .ok_or_else(|| Error::Output {
                    path: path.clone(),
                    msg: "no `jet_id` column".into(),
                })?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| bad_type("jet_id"))?;
            out.ids.extend(ids.values().iter());
        }
    }
    Ok(out)
}

impl JetFeatures {
    /// Rows of the jets that `split` selects.
    pub fn rows(&self, split: &crate::loader::SplitSpec) -> Vec<usize> {
        (0..self.ids.len())
            .filter(|&i| split.keeps(self.ids[i]))
            .collect()
    }

    /// Positions of `names` among the columns; an unknown name is an error naming it and `dir`.
    pub fn columns(&self, names: &[String], dir: &Path) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                self.names
                    .iter()
                    .position(|d| d == n)
                    .ok_or_else(|| Error::Output {
                        path: dir.to_path_buf(),
                        msg: format!(
                            "the jets table has no numeric column `{n}` (it has: {})",
                            self.names.join(", ")
                        ),
                    })
            })
            .collect()
    }
}

/// The standardisation a run's jet inputs were trained with (`RUN/normalisation.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalisation {
    /// Feature columns in input order.
    pub names: Vec<String>,
    /// Training-set mean of each feature.
    pub mean: Vec<f64>,
    /// 1 / standard deviation (1 for a constant feature).
    pub scale: Vec<f64>,
}

impl Normalisation {
    /// Mean and standard deviation of columns `cols` of `data` over its rows `rows`.
    pub fn fit(data: &JetFeatures, cols: &[usize], rows: &[usize]) -> Self {
        let (nd, nf) = (data.names.len(), cols.len());
        let mut mean = vec![0f64; nf];
        let mut sq = vec![0f64; nf];
        for &r in rows {
            for (f, &c) in cols.iter().enumerate() {
                let v = f64::from(data.x[r * nd + c]);
                mean[f] += v;
                sq[f] += v * v;
            }
        }
        let n = rows.len().max(1) as f64;
        let scale = (0..nf)
            .map(|f| {
                mean[f] /= n;
                let var = (sq[f] / n - mean[f] * mean[f]).max(0.0);
                if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 }
            })
            .collect();
        Self {
            names: cols.iter().map(|&c| data.names[c].clone()).collect(),
            mean,
            scale,
        }
    }

    /// Writes `run/normalisation.json`.
    pub fn save(&self, run: &Path) -> Result<()> {
        let p = run.join("normalisation.json");
        let json = serde_json::to_vec_pretty(self).expect("serialises");
        std::fs::write(&p, json).map_err(|e| Error::io(&p, e))
    }

    /// Reads `run/normalisation.json`.
    pub fn load(run: &Path) -> Result<Self> {
        let p = run.join("normalisation.json");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let n: Self = serde_json::from_str(&text).map_err(|e| Error::Output {
            path: p.clone(),
            msg: format!("not a jet-input normalisation: {e}"),
        })?;
        if n.mean.len() != n.names.len() || n.scale.len() != n.names.len() {
            return Err(Error::Output {
                path: p,
                msg: "`mean` and `scale` need one entry per name".into(),
            });
        }
        Ok(n)
    }
}

/// The standardised jet inputs of every jet of a dataset, by jet id.
pub struct JetTable {
    /// Inputs per jet.
    pub width: usize,
    /// Row-major `[jets, width]`, standardised.
    x: Vec<f32>,
    /// Row of each jet id.
    index: HashMap<u64, usize>,
    /// Labels by row.
    pub labels: Vec<i8>,
    /// Jet ids by row.
    pub ids: Vec<u64>,
    /// The dataset, for errors.
    dir: std::path::PathBuf,
}

impl JetTable {
    /// The columns `norm` names, read from `data` (of dataset `dir`) and standardised.
    pub fn new(data: JetFeatures, norm: &Normalisation, dir: &Path) -> Result<Self> {
        let cols = data.columns(&norm.names, dir)?;
        let (nd, width) = (data.names.len(), cols.len());
        let mut x = Vec::with_capacity(data.ids.len() * width);
        for r in 0..data.ids.len() {
            for (f, &c) in cols.iter().enumerate() {
                let v = f64::from(data.x[r * nd + c]);
                x.push(((v - norm.mean[f]) * norm.scale[f]) as f32);
            }
        }
        let index = data
            .ids
            .iter()
            .enumerate()
            .map(|(r, &id)| (id, r))
            .collect();
        Ok(Self {
            width,
            x,
            index,
            labels: data.labels,
            ids: data.ids,
            dir: dir.to_path_buf(),
        })
    }

    /// Row-major `[rows, width]` of the table rows `rows`.
    pub fn matrix(&self, rows: &[usize]) -> Vec<f32> {
        let w = self.width;
        rows.iter()
            .flat_map(|&r| self.x[r * w..(r + 1) * w].iter().copied())
            .collect()
    }

    /// `[B, width]` inputs of the jets `ids` on `device`; a jet the table lacks is an error
    /// naming it (the points and jets tables of one dataset hold the same jets).
    pub fn tensor(&self, ids: &[u64], device: &Device) -> Result<Tensor<2>> {
        let rows: Vec<usize> = ids
            .iter()
            .map(|id| {
                self.index.get(id).copied().ok_or_else(|| Error::Output {
                    path: self.dir.clone(),
                    msg: format!("jet {id} of the points table is not in the jets table"),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Tensor::from_data(
            TensorData::new(self.matrix(&rows), [ids.len(), self.width]),
            device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> JetFeatures {
        JetFeatures {
            names: vec!["pt".into(), "m0".into(), "n_hits".into()],
            x: vec![100.0, 10.0, 5.0, 200.0, 30.0, 7.0, 300.0, 20.0, 9.0],
            labels: vec![0, 1, 1],
            ids: vec![11, 22, 33],
        }
    }

    #[test]
    fn normalisation_uses_the_given_rows_and_table_looks_up_by_id() {
        let d = features();
        let norm = Normalisation::fit(&d, &[1, 0], &[0, 1]);
        assert_eq!(norm.names, ["m0", "pt"]);
        // m0 over rows 0, 1: mean 20, sd 10; pt: mean 150, sd 50.
        assert_eq!(norm.mean, [20.0, 150.0]);
        assert_eq!(norm.scale, [0.1, 0.02]);
        let t = JetTable::new(d, &norm, Path::new("ds")).unwrap();
        let x: Vec<f32> = t
            .tensor(&[33, 11], &Device::flex())
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(x, [0.0, 3.0, -1.0, -1.0]);
        let e = t.tensor(&[44], &Device::flex()).unwrap_err().to_string();
        assert!(e.contains("jet 44"), "{e}");
    }

    #[test]
    fn an_unknown_column_names_itself_and_the_dataset() {
        let e = features()
            .columns(&["mass".into()], Path::new("/data/qg"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`mass`") && e.contains("/data/qg") && e.contains("m0"),
            "{e}"
        );
    }
}
