//! Arrow schemas of the output tables, with a description of every column.
//!
//! The same definitions produce the writer's schema, the column descriptions stored in the
//! Parquet files' Arrow metadata, and the JSON contracts committed under `schemas/`.

use crate::config::{PipelineConfig, RowAxis};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// One column of a table contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDoc {
    /// Column name.
    pub name: String,
    /// Type, e.g. `uint64` or `list<float32>`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether nulls may occur.
    pub nullable: bool,
    /// What the column holds, with units.
    pub description: String,
}

/// A table contract, as committed under `schemas/` and stored in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDoc {
    /// Table name (`jets`, `points`).
    pub table: String,
    /// What one row is.
    pub row: String,
    /// Hive partition column, if any.
    pub partitioned_by: Option<String>,
    /// Columns in file order.
    pub columns: Vec<ColumnDoc>,
}

struct Col {
    name: String,
    data_type: DataType,
    nullable: bool,
    description: String,
}

fn col(name: &str, data_type: DataType, nullable: bool, description: &str) -> Col {
    Col {
        name: name.into(),
        data_type,
        nullable,
        description: description.into(),
    }
}

/// `List<T>` with non-null items named `item` (Arrow's convention).
pub fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, false)))
}

fn jet_columns(cfg: &PipelineConfig) -> Vec<Col> {
    vec![
        col(
            "jet_id",
            DataType::UInt64,
            false,
            "Unique jet id: (input file position in the run << 32) | index in that file",
        ),
        col(
            "label",
            DataType::Int8,
            true,
            &format!(
                "Class label as stored in the source dataset `{}` (allowed: {:?}); null when the source has none",
                cfg.source.datasets.label.as_deref().unwrap_or("-"),
                cfg.source.labels
            ),
        ),
        col(
            "pt",
            DataType::Float32,
            true,
            "Jet transverse momentum from the source [GeV]; null when absent",
        ),
        col(
            "m0",
            DataType::Float32,
            true,
            "Jet mass from the source [GeV]; null when absent",
        ),
        col(
            "n_hits",
            DataType::UInt32,
            false,
            "Pixels with any channel above the threshold (points before truncation)",
        ),
    ]
}

fn feature_columns(cfg: &PipelineConfig, cols: &mut Vec<Col>) {
    use crate::config::FeatureGroup as G;
    let Some(f) = &cfg.stages.features else {
        return;
    };
    let has = |g| f.groups.contains(&g);
    let chans = &cfg.source.channels;
    let signed = |c: &String| cfg.source.signed_channels.contains(c);
    let thr = cfg.stages.pointcloud.threshold;
    let f32c = |n: String, d: String| col(&n, DataType::Float32, false, &d);
    if has(G::Hits) {
        for c in chans {
            cols.push(col(
                &format!("hits_{c}"),
                DataType::UInt32,
                false,
                &format!("Pixels with `{c}` > {thr}"),
            ));
        }
    }
    if has(G::Energy) {
        cols.push(f32c(
            "sum_total".into(),
            "E = Σ over pixels of the sum of the unsigned (energy) channels [GeV]".into(),
        ));
        for c in chans.iter().filter(|c| !signed(c)) {
            cols.push(f32c(
                format!("frac_{c}"),
                format!("sum_{c} / sum_total (0 for an empty jet)"),
            ));
        }
    }
    if has(G::Width) {
        for c in chans {
            cols.push(f32c(format!("width_{c}"), format!("Girth of `{c}`: Σ v·ΔR / Σ v, ΔR = √(Δη²+Δφ²) from the image centre (0 if empty)")));
        }
        cols.push(f32c("width_total".into(), "Girth of E: Σ e·ΔR / Σ e with e = pixel energy summed over the energy channels (0 if empty)".into()));
    }
    if has(G::Ptd) {
        for c in chans {
            cols.push(f32c(
                format!("ptd_{c}"),
                format!("pT_D of `{c}`: Σ v² / (Σ v)² over pixels (0 if empty)"),
            ));
        }
        cols.push(f32c(
            "ptd_total".into(),
            "pT_D of E: Σ e² / (Σ e)² over pixels (0 if empty)".into(),
        ));
    }
    if has(G::Leading) {
        cols.push(f32c(
            "lead_frac".into(),
            "max pixel e / Σ e: energy fraction of the leading pixel (0 if empty)".into(),
        ));
    }
    if has(G::Core) {
        cols.push(f32c(
            "core_frac".into(),
            format!(
                "Energy fraction within ΔR < {} of the image centre (0 if empty)",
                f.core_radius
            ),
        ));
    }
    if has(G::Moments) {
        let cov = "C = energy-weighted covariance of (Δη, Δφ) about the energy centroid";
        cols.push(f32c(
            "axis_major".into(),
            format!("√λ₁, λ₁ ≥ λ₂ the eigenvalues of {cov} (0 if empty)"),
        ));
        cols.push(f32c(
            "axis_minor".into(),
            format!("√λ₂ of {cov} (0 if empty)"),
        ));
        cols.push(f32c(
            "eccentricity".into(),
            "√(1 − λ₂/λ₁) (0 if empty or λ₁ = 0)".into(),
        ));
    }
    if has(G::Kept) {
        for r in &cfg.stages.pointcloud.resolutions {
            cols.push(f32c(
                format!("kept_frac_{r}"),
                format!(
                    "min(n_hits, {r}) / n_hits: fraction of the hits kept at res={r} (1 if no hits)"
                ),
            ));
        }
    }
}

fn jets_table_columns(cfg: &PipelineConfig) -> Vec<Col> {
    let mut cols = jet_columns(cfg);
    cols.insert(
        1,
        col(
            "source_file",
            DataType::Utf8,
            false,
            "Input HDF5 file the jet was read from",
        ),
    );
    cols.insert(
        2,
        col(
            "source_index",
            DataType::UInt64,
            false,
            "Jet index in the input file",
        ),
    );
    for ch in &cfg.source.channels {
        cols.push(col(
            &format!("sum_{ch}"),
            DataType::Float32,
            false,
            &format!("Sum of channel `{ch}` over all pixels (source units; GeV for energies)"),
        ));
    }
    feature_columns(cfg, &mut cols);
    cols
}

fn points_table_columns(cfg: &PipelineConfig) -> Vec<Col> {
    let pc = &cfg.stages.pointcloud;
    let (row_c, col_c) = match pc.row_axis {
        RowAxis::Eta => ("η", "φ"),
        RowAxis::Phi => ("φ", "η"),
    };
    let mut cols = jet_columns(cfg);
    cols.push(col(
        "n_points",
        DataType::UInt16,
        false,
        "Points stored for this jet at this resolution: min(n_hits, res)",
    ));
    cols.push(col(
        "row",
        list_of(DataType::UInt16),
        false,
        &format!("Pixel row of each point (image row axis = {row_c}); points ordered by descending rank, ties by the tie key (a hash of the pixel index, docs/pipeline.md: Point selection)"),
    ));
    cols.push(col(
        "col",
        list_of(DataType::UInt16),
        false,
        &format!("Pixel column of each point (image column axis = {col_c})"),
    ));
    cols.push(col(
        "eta",
        list_of(DataType::Float32),
        false,
        &format!("Δη of each point from the image centre (jet axis): (pixel − (size−1)/2) × pixel_size, pixel_size = {}", pc.pixel_size),
    ));
    cols.push(col(
        "phi",
        list_of(DataType::Float32),
        false,
        "Δφ of each point from the image centre (jet axis), same convention as eta",
    ));
    for ch in &cfg.source.channels {
        cols.push(col(
            ch,
            list_of(DataType::Float32),
            false,
            &format!("Channel `{ch}` value of each point (source units; GeV for energies)"),
        ));
    }
    if let Some(knn) = &cfg.stages.knn {
        let k = knn.k;
        let space = knn.coordinates.join(", ");
        cols.push(col("knn_k", DataType::UInt16, false, &format!(
            "Real neighbours per point: min({k}, n_points − 1{}); knn entries from this position on are padding", if knn.include_self { " + 1" } else { "" }
        )));
        cols.push(col("knn", list_of(DataType::UInt16), false, &format!(
            "{k} neighbour indices per point, point-major (point i at [i*{k}, (i+1)*{k})), by (distance, index) in ({space}){}; padding = the point's own index",
            if knn.include_self { ", the point itself first" } else { ", the point itself excluded" }
        )));
        if knn.distances {
            cols.push(col(
                "knn_dist",
                list_of(DataType::Float32),
                false,
                &format!("Euclidean distance in ({space}) to each entry of knn; 0 for padding"),
            ));
        }
        cols.push(col(
            "n_components",
            DataType::UInt16,
            false,
            "Connected components of the symmetrised kNN graph (0 for an empty jet)",
        ));
        cols.push(col(
            "largest_component",
            DataType::UInt16,
            false,
            "Points in the largest connected component of the symmetrised kNN graph",
        ));
        cols.push(col("mean_degree", DataType::Float32, false, "Mean degree of the symmetrised kNN graph (i–j when either is a neighbour of the other)"));
        cols.push(col(
            "max_degree",
            DataType::UInt16,
            false,
            "Maximum degree of the symmetrised kNN graph",
        ));
    }
    cols
}

fn to_schema(cols: &[Col]) -> SchemaRef {
    let fields: Vec<Field> =
        cols.iter()
            .map(|c| {
                Field::new(&c.name, c.data_type.clone(), c.nullable).with_metadata(HashMap::from([
                    ("description".to_string(), c.description.clone()),
                ]))
            })
            .collect();
    Arc::new(Schema::new(fields))
}

/// Schema of `jets/`: one row per converted jet.
pub fn jets_schema(cfg: &PipelineConfig) -> SchemaRef {
    to_schema(&jets_table_columns(cfg))
}

/// Schema of `points/res=R/`: one row per jet, per-point values in list columns.
pub fn points_schema(cfg: &PipelineConfig) -> SchemaRef {
    to_schema(&points_table_columns(cfg))
}

/// Whether `tag` can tag a predictions file (`predictions_TAG.parquet`, `pipeline eval --tag`)
/// and name its SQL table: non-empty, letters, digits and `_`.
pub fn is_predictions_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Schema of a training run's `predictions.parquet` (`pipeline eval`): one row per jet.
pub fn predictions_schema() -> SchemaRef {
    to_schema(&[
        col(
            "jet_id",
            DataType::UInt64,
            false,
            "Jet id, the join key with the dataset's `jets` and `points` tables",
        ),
        col(
            "score",
            DataType::Float32,
            false,
            "Model output after the sigmoid: probability of label 1",
        ),
        col(
            "label",
            DataType::Int8,
            true,
            "Label stored with the jet (`y` of the source); null when absent",
        ),
    ])
}

/// Short type name used in the contracts, e.g. `list<float32>`.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::List(f) | DataType::LargeList(f) => format!("list<{}>", type_name(f.data_type())),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The contract of a table from its Arrow schema.
pub fn table_doc(
    table: &str,
    row: &str,
    partitioned_by: Option<&str>,
    schema: &Schema,
) -> TableDoc {
    TableDoc {
        table: table.into(),
        row: row.into(),
        partitioned_by: partitioned_by.map(Into::into),
        columns: schema
            .fields()
            .iter()
            .map(|f| ColumnDoc {
                name: f.name().clone(),
                data_type: type_name(f.data_type()),
                nullable: f.is_nullable(),
                description: f.metadata().get("description").cloned().unwrap_or_default(),
            })
            .collect(),
    }
}

/// Contracts of every table a pipeline writes.
pub fn table_docs(cfg: &PipelineConfig) -> Vec<TableDoc> {
    vec![
        table_doc("jets", "one converted jet", None, &jets_schema(cfg)),
        table_doc(
            "points",
            "one jet at one resolution; per-point values as lists (no padding points)",
            Some("res"),
            &points_schema(cfg),
        ),
    ]
}

/// Contract of a training run's `predictions.parquet`.
pub fn predictions_doc() -> TableDoc {
    table_doc(
        "predictions",
        "one jet scored by a trained model (`pipeline eval`, in the run directory)",
        None,
        &predictions_schema(),
    )
}

/// `sha256:<hex>` of a contract's column names, types and nullability (not descriptions).
pub fn fingerprint(doc: &TableDoc) -> String {
    let mut h = Sha256::new();
    for c in &doc.columns {
        h.update(format!("{}:{}:{};", c.name, c.data_type, c.nullable));
    }
    format!("sha256:{:x}", h.finalize())
}
