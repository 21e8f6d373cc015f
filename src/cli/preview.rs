//! `pipeline preview DIR`: a PNG of the first jets of a dataset, side by side: each image
//! channel as read from the source (log colour scale), then the points kept at the smallest
//! and at the largest resolution, brighter for higher rank. Written to `DIR/preview.png`.

use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::plot::{DrawResult, FONT, Figure, e, heat};
use crate::source::Hdf5Source;
use crate::store::manifest::Manifest;
use arrow::array::AsArray;
use arrow::datatypes::{UInt16Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Arguments of `pipeline preview`.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Dataset directory written by `pipeline run`.
    pub dir: PathBuf,
    /// Jets to draw (one row each).
    #[arg(long, default_value_t = 4)]
    pub jets: usize,
    /// PNG to write. Default: DIR/preview.png.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

const SCALE: usize = 2;
const GAP: usize = 4;
/// Height of the title strip.
const HEAD: usize = 24;

/// A jet's id and the pixel rows and columns of its points.
type JetPixels = (u64, Vec<u16>, Vec<u16>);

/// The first `n` jets of a points partition.
fn first_points(path: &Path, n: usize) -> Result<Vec<JetPixels>> {
    let named = |e: &dyn std::fmt::Display| Error::Output {
        path: path.into(),
        msg: e.to_string(),
    };
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| named(&e))?
        .build()
        .map_err(|e| named(&e))?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(|e| named(&e))?;
        let ids = b
            .column_by_name("jet_id")
            .expect("jet_id")
            .as_primitive::<UInt64Type>();
        let (rows, cols) = (
            b.column_by_name("row").expect("row").as_list::<i32>(),
            b.column_by_name("col").expect("col").as_list::<i32>(),
        );
        for i in 0..b.num_rows() {
            if out.len() == n {
                return Ok(out);
            }
            let r = rows.value(i).as_primitive::<UInt16Type>().values().to_vec();
            let c = cols.value(i).as_primitive::<UInt16Type>().values().to_vec();
            out.push((ids.value(i), r, c));
        }
    }
    Ok(out)
}

/// Draws the preview and returns where it was written.
pub fn preview(args: PreviewArgs) -> Result<PathBuf> {
    let dir = &args.dir;
    let m = Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.clone(),
        msg: "no manifest.json".into(),
    })?;
    let mut src: SourceConfig =
        serde_json::from_value(m.config["source"].clone()).map_err(|e| Error::Output {
            path: dir.clone(),
            msg: format!("manifest source config: {e}"),
        })?;
    src.files = m
        .sources
        .iter()
        .map(|s| glob::Pattern::escape(&s.path))
        .collect();
    let source = Hdf5Source::open(&src)?;
    let g = source.geometry;
    let parts = &m
        .tables
        .get("points")
        .map(|t| t.partitions.clone())
        .unwrap_or_default();
    let first = m.units.first().ok_or_else(|| Error::Output {
        path: dir.clone(),
        msg: "no complete unit to draw".into(),
    })?;
    let shard = |part: &str| dir.join(format!("points/{part}/part-{:05}.parquet", first.unit));
    let (lo, hi) = (
        parts.first().cloned().unwrap_or_default(),
        parts.last().cloned().unwrap_or_default(),
    );
    let lo_pts = first_points(&shard(&lo), args.jets)?;
    let hi_pts = first_points(&shard(&hi), args.jets)?;
    let panels = g.channels + 2;
    let (pw, ph) = (g.width * SCALE, g.height * SCALE);
    let (w, h) = (panels * (pw + GAP), HEAD + lo_pts.len() * (ph + GAP));
    let mut img = vec![40u8; w * h * 3];
    let (ps, cs) = g.strides();
    for (row, ((id, lr, lc), (_, hr, hc))) in lo_pts.iter().zip(&hi_pts).enumerate() {
        let (file, index) = ((id >> 32) as usize, id & 0xFFFF_FFFF);
        let raw = source.files[file].read(index, 1)?;
        let mut put = |panel: usize, r: usize, c: usize, rgb: [u8; 3]| {
            for dy in 0..SCALE {
                for dx in 0..SCALE {
                    let (x, y) = (
                        panel * (pw + GAP) + c * SCALE + dx,
                        HEAD + row * (ph + GAP) + r * SCALE + dy,
                    );
                    img[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&rgb);
                }
            }
        };
        for ch in 0..g.channels {
            let vals: Vec<f32> = (0..g.pixels())
                .map(|p| raw.images[p * ps + ch * cs])
                .collect();
            let max = vals.iter().fold(0f32, |a, &v| a.max(v.abs())).max(1e-12);
            for (p, v) in vals.iter().enumerate() {
                let t = (1.0 + 1000.0 * v.abs() / max).ln() / 1001f32.ln();
                put(ch, p / g.width, p % g.width, heat(t));
            }
        }
        for (k, (rows, cols)) in [(lr, lc), (hr, hc)].into_iter().enumerate() {
            for r in 0..g.height {
                for c in 0..g.width {
                    put(g.channels + k, r, c, [0, 0, 0]);
                }
            }
            let n = rows.len().max(1) as f32;
            for (i, (&r, &c)) in rows.iter().zip(cols).enumerate() {
                put(
                    g.channels + k,
                    r as usize,
                    c as usize,
                    heat(1.0 - 0.6 * i as f32 / n),
                );
            }
        }
    }
    let out = args.output.unwrap_or_else(|| dir.join("preview.png"));
    // Column titles above, each jet's id in its first panel.
    let mut titles: Vec<String> = src.channels.clone();
    titles.push(format!("points {lo}"));
    titles.push(format!("points {hi}"));
    let mut fig = Figure::from_pixels(img, w as u32, h as u32)?;
    fig.draw(&out, |root| -> DrawResult {
        let style = (FONT, 15).into_font().color(&WHITE);
        for (k, t) in titles.iter().enumerate() {
            let x = (k * (pw + GAP) + 4) as i32;
            e(root.draw(&Text::new(t.as_str(), (x, 4), style.clone())))?;
        }
        let small = (FONT, 12).into_font().color(&WHITE);
        for (row, (id, _, _)) in lo_pts.iter().enumerate() {
            let y = (HEAD + row * (ph + GAP) + 3) as i32;
            let text = format!("jet {id}");
            e(root.draw(&Text::new(text, (4, y), small.clone())))?;
        }
        Ok(())
    })?;
    fig.write(&out)?;
    let names: Vec<&str> = src.channels.iter().map(|s| s.as_str()).collect();
    println!(
        "{}: {} jets; panels: {} | points {lo} | points {hi}",
        out.display(),
        lo_pts.len(),
        names.join(" | ")
    );
    Ok(out)
}
