//! `pipeline inspect`: summarise an HDF5 source file (datasets, shapes, dtypes, storage,
//! jets, sparsity, label balance) or an output dataset (manifest, tables, rows, label
//! balance, points per resolution).

use crate::config::{DatasetNames, Layout, SourceConfig};
use crate::error::{Error, Result};
use crate::source::Hdf5Source;
use crate::store::manifest::Manifest;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int8Type, UInt16Type, UInt32Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `pipeline inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// An HDF5 file or a dataset directory written by `pipeline run`.
    pub path: PathBuf,
    /// Image dataset name (HDF5 files).
    #[arg(long, default_value = "X_jets")]
    pub images: String,
    /// Label dataset name (HDF5 files).
    #[arg(long, default_value = "y")]
    pub label: String,
    /// Image layout (HDF5 files).
    #[arg(long, value_enum, default_value = "nhwc")]
    pub layout: LayoutArg,
    /// Jets read for the sparsity figures (HDF5 files).
    #[arg(long, default_value_t = 2000)]
    pub max_jets: u64,
}

/// `--layout` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LayoutArg {
    /// (jets, rows, columns, channels).
    Nhwc,
    /// (jets, channels, rows, columns).
    Nchw,
}

/// Dispatches on the kind of path.
pub fn inspect(args: InspectArgs) -> Result<()> {
    if args.path.is_dir() {
        inspect_dataset(&args.path)
    } else {
        inspect_hdf5(&args)
    }
}

fn inspect_hdf5(args: &InspectArgs) -> Result<()> {
    let path = &args.path;
    let file = crate::source::open_read_only(path)?;
    println!("{} ({:.2} MB)", path.display(), file.size() as f64 / 1e6);
    let names = file.member_names().unwrap_or_default();
    for name in &names {
        if let Ok(ds) = file.dataset(name) {
            let dtype = ds
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_or("?".to_string(), |t| format!("{t:?}"));
            let chunk = ds
                .chunk()
                .map_or("contiguous".into(), |c| format!("chunks {c:?}"));
            println!("  {name:<10} shape {:?}  {dtype}  {chunk}", ds.shape());
        }
    }
    let Ok(images) = file.dataset(&args.images) else {
        println!(
            "(no image dataset `{}`: pass --images NAME for sparsity figures)",
            args.images
        );
        return Ok(());
    };
    let shape = images.shape();
    let channels = match args.layout {
        LayoutArg::Nhwc => shape.get(3),
        LayoutArg::Nchw => shape.get(1),
    }
    .copied()
    .unwrap_or(0);
    let has_label = names.contains(&args.label);
    let cfg = SourceConfig {
        files: vec![glob::Pattern::escape(&path.display().to_string())],
        datasets: DatasetNames {
            images: args.images.clone(),
            pt: None,
            m0: None,
            label: has_label.then(|| args.label.clone()),
        },
        layout: match args.layout {
            LayoutArg::Nhwc => Layout::Nhwc,
            LayoutArg::Nchw => Layout::Nchw,
        },
        channels: (0..channels).map(|c| format!("c{c}")).collect(),
        labels: vec![],
        signed_channels: (0..channels).map(|c| format!("c{c}")).collect(),
        on_invalid: Default::default(),
        offset: 0,
        limit: None,
    };
    let source = Hdf5Source::open(&cfg)?;
    let f = &source.files[0];
    let g = source.geometry;
    println!(
        "jets: {}; images {}×{}×{} {} ({})",
        f.n_jets,
        g.height,
        g.width,
        g.channels,
        f.image_dtype,
        f.storage_description()
    );
    let n = f.n_jets.min(args.max_jets);
    let (ps, cs) = g.strides();
    let mut nonzero = vec![0u64; g.channels];
    let (mut union, mut invalid, mut negative) = (0u64, 0u64, 0u64);
    let mut labels: BTreeMap<String, u64> = BTreeMap::new();
    let mut start = 0;
    while start < n {
        let k = (n - start).min(256) as usize;
        let raw = f.read(start, k)?;
        for img in raw.images.chunks_exact(g.values_per_jet()) {
            for p in 0..g.pixels() {
                let mut any = false;
                for (c, nz) in nonzero.iter_mut().enumerate() {
                    let v = img[p * ps + c * cs];
                    invalid += u64::from(!v.is_finite());
                    negative += u64::from(v < 0.0);
                    if v != 0.0 {
                        *nz += 1;
                        any = true;
                    }
                }
                union += u64::from(any);
            }
        }
        for l in raw.label.iter().flatten() {
            *labels.entry(l.to_string()).or_default() += 1;
        }
        start += k as u64;
    }
    let pixels = (n as f64) * g.pixels() as f64;
    println!("sparsity over the first {n} jets:");
    for (c, nz) in nonzero.iter().enumerate() {
        println!(
            "  channel {c}: {:.3}% nonzero, {:.1} pixels/jet",
            100.0 * *nz as f64 / pixels,
            *nz as f64 / n.max(1) as f64
        );
    }
    println!(
        "  any channel: {:.3}% nonzero ({:.2}% zeros), {:.1} hit pixels/jet",
        100.0 * union as f64 / pixels,
        100.0 - 100.0 * union as f64 / pixels,
        union as f64 / n.max(1) as f64
    );
    println!("  non-finite values: {invalid}; negative values: {negative}");
    if has_label {
        let counts: Vec<String> = labels.iter().map(|(l, c)| format!("{l}: {c}")).collect();
        println!(
            "labels `{}` over the first {n} jets: {}",
            args.label,
            counts.join(", ")
        );
    }
    Ok(())
}

fn read_column(files: &[PathBuf], column: &str, mut f: impl FnMut(&dyn Array)) -> Result<()> {
    for path in files {
        let named = |e: &dyn std::fmt::Display| Error::Output {
            path: path.clone(),
            msg: format!("cannot read column `{column}`: {e}"),
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| named(&e))?;
        let idx = builder.schema().index_of(column).map_err(|e| named(&e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
        for batch in builder
            .with_projection(mask)
            .build()
            .map_err(|e| named(&e))?
        {
            f(batch.map_err(|e| named(&e))?.column(0).as_ref());
        }
    }
    Ok(())
}

fn inspect_dataset(dir: &Path) -> Result<()> {
    let m = Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.into(),
        msg: "no manifest.json: not a jetpipe dataset".into(),
    })?;
    println!(
        "{} — pipeline `{}`, {:?}, {}",
        dir.display(),
        m.pipeline,
        m.status,
        m.tool
    );
    if let Some(e) = &m.error {
        println!("  error: {e}");
    }
    let t = &m.totals;
    println!(
        "  units {}/{}; jets {} in, {} written, {} rejected; {:.2} MB",
        t.units_complete,
        t.units_planned,
        t.jets_in,
        t.jets_written,
        t.jets_rejected,
        t.bytes as f64 / 1e6
    );
    for s in &m.sources {
        println!("  source {} ({} jets, {})", s.path, s.jets, s.image_dtype);
    }
    let shards = |prefix: &str| -> Vec<PathBuf> {
        m.units
            .iter()
            .flat_map(|u| &u.shards)
            .filter(|s| s.path.starts_with(prefix))
            .map(|s| dir.join(&s.path))
            .collect()
    };
    let mut labels: BTreeMap<Option<i8>, u64> = BTreeMap::new();
    read_column(&shards("jets/"), "label", |a| {
        for l in a.as_primitive::<Int8Type>() {
            *labels.entry(l).or_default() += 1;
        }
    })?;
    let counts: Vec<String> = labels
        .iter()
        .map(|(l, c)| format!("{}: {c}", l.map_or("null".into(), |v| v.to_string())))
        .collect();
    println!("  labels: {}", counts.join(", "));
    let (mut hits, mut jets) = (0u64, 0u64);
    read_column(&shards("jets/"), "n_hits", |a| {
        for h in a.as_primitive::<UInt32Type>().values() {
            hits += u64::from(*h);
            jets += 1;
        }
    })?;
    println!(
        "  hits per jet: {:.1} mean",
        hits as f64 / jets.max(1) as f64
    );
    for part in &m
        .tables
        .get("points")
        .map(|t| t.partitions.clone())
        .unwrap_or_default()
    {
        let files = shards(&format!("points/{part}/"));
        let (mut pts, mut rows, mut full) = (0u64, 0u64, 0u64);
        let res: u64 = part.trim_start_matches("res=").parse().unwrap_or(0);
        read_column(&files, "n_points", |a| {
            for n in a.as_primitive::<UInt16Type>().values() {
                pts += u64::from(*n);
                rows += 1;
                full += u64::from(u64::from(*n) == res);
            }
        })?;
        println!(
            "  points/{part}: {rows} jets in {} shard(s), {:.1} points/jet, {:.1}% of jets filled to {res}",
            files.len(),
            pts as f64 / rows.max(1) as f64,
            100.0 * full as f64 / rows.max(1) as f64
        );
    }
    Ok(())
}
