//! Run plots as PNGs: the validation ROC curve (`roc.png`: false-positive rate →, true-positive
//! rate ↑, unit square with a 0.1 grid and the random-guess diagonal) and the loss curves
//! (`loss.png`: training loss blue, validation loss orange, validation AUC green on a 0.5–1.0
//! scale, one point per epoch). No text is drawn: the axes are fixed and documented in the
//! README, and the numbers are in `metrics.csv`.

use crate::error::{Error, Result};
use crate::train::history::EpochMetrics;
use crate::train::metrics::roc as roc_curve;
use std::path::Path;

const W: usize = 480;
const H: usize = 480;
const M: usize = 24;

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        let mut c = Self {
            px: vec![255; W * H * 3],
        };
        for i in 0..=10 {
            let t = i as f64 / 10.0;
            let shade = if i == 0 || i == 10 {
                [0, 0, 0]
            } else {
                [225, 225, 225]
            };
            c.line((t, 0.0), (t, 1.0), shade);
            c.line((0.0, t), (1.0, t), shade);
        }
        c
    }

    /// Pixel of (x, y) in the unit square.
    fn at(x: f64, y: f64) -> (i64, i64) {
        let w = (W - 2 * M) as f64;
        let h = (H - 2 * M) as f64;
        (
            (M as f64 + x.clamp(0.0, 1.0) * w).round() as i64,
            ((H - M) as f64 - y.clamp(0.0, 1.0) * h).round() as i64,
        )
    }

    fn set(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// A 2-pixel-wide line between unit-square points.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), rgb: [u8; 3]) {
        let (x0, y0) = Self::at(a.0, a.1);
        let (x1, y1) = Self::at(b.0, b.1);
        let n = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=n {
            let x = x0 + (x1 - x0) * s / n;
            let y = y0 + (y1 - y0) * s / n;
            self.set(x, y, rgb);
            self.set(x + 1, y, rgb);
            self.set(x, y + 1, rgb);
        }
    }

    fn polyline(&mut self, pts: &[(f64, f64)], rgb: [u8; 3]) {
        for w in pts.windows(2) {
            self.line(w[0], w[1], rgb);
        }
    }

    fn write(&self, path: &Path) -> Result<()> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), W as u32, H as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let bad = |e: png::EncodingError| Error::Output {
            path: path.to_path_buf(),
            msg: format!("writing PNG: {e}"),
        };
        enc.write_header()
            .map_err(bad)?
            .write_image_data(&self.px)
            .map_err(bad)
    }
}

/// Writes the ROC curve of `scores` (any monotonic score, e.g. logits) for `labels`.
pub fn roc(path: &Path, scores: &[f32], labels: &[i8]) -> Result<()> {
    let mut c = Canvas::new();
    c.line((0.0, 0.0), (1.0, 1.0), [160, 160, 160]);
    c.polyline(&roc_curve(scores, labels), [31, 119, 180]);
    c.write(path)
}

/// Writes the loss curves of a run's history.
pub fn losses(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut c = Canvas::new();
    let n = history.len().max(2) - 1;
    let top = history
        .iter()
        .flat_map(|m| [m.train_loss, m.val_loss])
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let x = |i: usize| i as f64 / n as f64;
    let series = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .enumerate()
            .map(|(i, m)| (x(i), f(m)))
            .collect()
    };
    c.polyline(&series(&|m| m.train_loss / top), [31, 119, 180]);
    c.polyline(&series(&|m| m.val_loss / top), [255, 127, 14]);
    c.polyline(
        &series(&|m| (m.val_auc.unwrap_or(0.5) - 0.5) * 2.0),
        [44, 160, 44],
    );
    c.write(path)
}
