//! Row-group decoding for the loader with parquet's column readers.
//!
//! The points table's per-point columns are non-null lists of non-null values, and `n_points`
//! (or `n_points · k` for `knn`) says how many values each jet has. So the loader reads each
//! list column's leaf values in one run (`read_records`, levels decoded in bulk and then
//! ignored) and slices them with the prefix sums of `n_points`, instead of assembling Arrow
//! `ListArray`s: in `perf` (during development, with the Arrow reader), the Arrow list reader
//! spent about half its time building validity bitmaps and offsets that nothing here needs.
//! A value count that disagrees with `n_points` is an error
//! naming the shard, row group and column.

use crate::error::{Error, Result};
use crate::loader::plan::RowGroup;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType as PqType;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::RowGroupReader;
use parquet::file::serialized_reader::SerializedRowGroupReader;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// The loader's columns of one row group, decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Jet ids.
    pub jet_ids: Vec<u64>,
    /// Labels, −1 where null.
    pub labels: Vec<i8>,
    /// Points per jet.
    pub n_points: Vec<u16>,
    /// Prefix sums of `n_points` (rows + 1 entries): jet j's points are `starts[j]..starts[j+1]`.
    pub starts: Vec<usize>,
    /// Each feature's values of every point of the row group, as f32.
    pub features: Vec<Vec<f32>>,
    /// kNN lists (`k` per point, jet j at `starts[j]·k..starts[j+1]·k`) and `knn_k` per jet.
    pub knn: Option<(Vec<u16>, Vec<u16>)>,
}

/// A per-point feature the loader derives instead of reading: the point's position in the
/// jet's stored order (0, 1, …, n−1; points are stored by descending energy rank). A
/// convolutional model that pools globally cannot count the real points of a padded jet;
/// with this feature, a max pool over it gives n−1, the jet's point multiplicity.
pub const POINT_INDEX: &str = "point_index";

/// Whether `name` is a feature the loader derives rather than a stored column.
pub fn is_derived(name: &str) -> bool {
    name == POINT_INDEX
}

/// Names of the columns to decode.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Per-point feature columns, in order.
    pub features: Vec<String>,
    /// Neighbours per point when `knn` and `knn_k` are wanted.
    pub k: Option<usize>,
}

/// Per-thread buffers reused across columns and row groups: levels are decoded (the reader
/// needs them to find records) but only the values are kept, and integer lists go through an
/// i32 buffer. Reusing them avoids page faults on fresh multi-megabyte allocations, which
/// were a third of the loader's time with neighbours before.
#[derive(Default)]
struct Scratch {
    def: Vec<i16>,
    rep: Vec<i16>,
    ints: Vec<i32>,
    longs: Vec<i64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Reads every record of a column chunk, appending the values to `values`.
fn read_all<T: PqType>(
    mut r: ColumnReaderImpl<T>,
    rows: usize,
    def: &mut Vec<i16>,
    rep: &mut Vec<i16>,
    values: &mut Vec<T::T>,
) -> parquet::errors::Result<()> {
    def.clear();
    rep.clear();
    let mut records = 0;
    while records < rows {
        let (n, _, levels) = r.read_records(rows - records, Some(def), Some(rep), values)?;
        if n == 0 && levels == 0 {
            break;
        }
        records += n;
    }
    if records != rows {
        return Err(parquet::errors::ParquetError::General(format!(
            "{records} records, expected {rows}"
        )));
    }
    Ok(())
}

/// A column's values converted with `int` (integer columns) or `float` (float32 columns), and
/// its definition levels when it has nulls.
fn read_col<T>(
    rg: &dyn RowGroupReader,
    leaf: usize,
    rows: usize,
    capacity: usize,
    int: impl Fn(i64) -> T,
    float: Option<fn(Vec<f32>) -> Vec<T>>,
) -> parquet::errors::Result<(Vec<T>, Vec<i16>)> {
    SCRATCH.with_borrow_mut(|s| {
        let Scratch {
            def,
            rep,
            ints,
            longs,
        } = s;
        let out = match rg.get_column_reader(leaf)? {
            ColumnReader::Int32ColumnReader(r) => {
                ints.clear();
                ints.reserve(capacity);
                read_all(r, rows, def, rep, ints)?;
                ints.iter().map(|&x| int(i64::from(x))).collect()
            }
            ColumnReader::Int64ColumnReader(r) => {
                longs.clear();
                longs.reserve(capacity);
                read_all(r, rows, def, rep, longs)?;
                longs.iter().map(|&x| int(x)).collect()
            }
            ColumnReader::FloatColumnReader(r) if float.is_some() => {
                let mut v = Vec::with_capacity(capacity);
                read_all(r, rows, def, rep, &mut v)?;
                float.expect("checked")(v)
            }
            _ => {
                return Err(parquet::errors::ParquetError::General(
                    "not a column of the expected type".into(),
                ));
            }
        };
        // Definition levels only for a column with nulls (a short value list).
        let def = if out.len() < rows {
            def.clone()
        } else {
            Vec::new()
        };
        Ok((out, def))
    })
}

/// Decodes the wanted columns of row group `rg` of the shard at `path` (footer `meta`).
pub fn decode(
    path: &Path,
    meta: &Arc<ParquetMetaData>,
    rg: RowGroup,
    want: &Wanted,
) -> Result<Decoded> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        Error::Loader(format!(
            "{}: row group {}: column `{what}`: {e}",
            path.display(),
            rg.index
        ))
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedRowGroupReader::new(
        Arc::new(file),
        meta.row_group(rg.index as usize),
        None,
        Arc::new(ReaderProperties::builder().build()),
    )
    .map_err(|e| err("*", &e))?;
    let schema = meta.file_metadata().schema_descr();
    let leaf = |name: &str| {
        schema
            .columns()
            .iter()
            .position(|c| c.path().parts()[0] == name)
            .ok_or_else(|| err(name, &"not in the shard"))
    };
    let rows = rg.rows as usize;
    let scalar = |name: &str| -> Result<Vec<i64>> {
        let (v, _) =
            read_col(&reader, leaf(name)?, rows, rows, |x| x, None).map_err(|e| err(name, &e))?;
        if v.len() != rows {
            return Err(err(name, &"not a non-null column"));
        }
        Ok(v)
    };
    let jet_ids: Vec<u64> = scalar("jet_id")?.into_iter().map(|v| v as u64).collect();
    let n_points: Vec<u16> = scalar("n_points")?.into_iter().map(|v| v as u16).collect();
    let (label, def) = read_col(&reader, leaf("label")?, rows, rows, |x| x as i8, None)
        .map_err(|e| err("label", &e))?;
    let labels: Vec<i8> = if label.len() == rows {
        label
    } else if def.len() == rows {
        let mut it = label.into_iter();
        def.iter()
            .map(|&d| if d > 0 { it.next().unwrap_or(-1) } else { -1 })
            .collect()
    } else {
        return Err(err("label", &"fewer values than rows"));
    };
    let mut starts = Vec::with_capacity(rows + 1);
    starts.push(0usize);
    for &n in &n_points {
        starts.push(starts.last().copied().unwrap_or(0) + n as usize);
    }
    let total = starts[rows];
    let mut features = Vec::with_capacity(want.features.len());
    for name in &want.features {
        if name == POINT_INDEX {
            let mut v = Vec::with_capacity(total);
            for &n in &n_points {
                v.extend((0..n).map(f32::from));
            }
            features.push(v);
            continue;
        }
        let (v, _) = read_col(&reader, leaf(name)?, rows, total, |x| x as f32, Some(|v| v))
            .map_err(|e| err(name, &e))?;
        if v.len() != total {
            return Err(err(
                name,
                &format!("{} values for {total} points (n_points)", v.len()),
            ));
        }
        features.push(v);
    }
    let knn = match want.k {
        Some(k) => {
            let (list, _) = read_col(&reader, leaf("knn")?, rows, total * k, |x| x as u16, None)
                .map_err(|e| err("knn", &e))?;
            if list.len() != total * k {
                return Err(err(
                    "knn",
                    &format!("{} entries for {total} points × k={k}", list.len()),
                ));
            }
            let kk = scalar("knn_k")?.into_iter().map(|x| x as u16).collect();
            Some((list, kk))
        }
        None => None,
    };
    Ok(Decoded {
        jet_ids,
        labels,
        n_points,
        starts,
        features,
        knn,
    })
}
