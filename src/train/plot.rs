//! Run plots as PNGs: the ROC curve (`roc.png`, `roc_eval.png`: true-positive rate against
//! false-positive rate with the AUC in the legend) and the training curves (`loss.png`: train
//! and validation loss per epoch above, train and validation AUC below).

use crate::error::Result;
use crate::plot::{DrawResult, FONT, Figure, e};
use crate::train::history::EpochMetrics;
use crate::train::metrics::{auc, roc as roc_curve};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREY: RGBColor = RGBColor(150, 150, 150);

/// A named curve: (legend, colour, points).
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Draws the legend of `chart`'s labelled series at `pos` in a boxed `size`-point font.
pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    pos: SeriesLabelPosition,
    size: u32,
) -> DrawResult {
    e(chart
        .configure_series_labels()
        .position(pos)
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw())
}

/// Writes the ROC curve of `scores` (any monotonic score, e.g. logits) for `labels`
/// (1 = positive class as stored in the file), titled `title`.
pub fn roc(path: &Path, title: &str, scores: &[f32], labels: &[i8]) -> Result<()> {
    let area = auc(scores, labels).map_or("-".into(), |a| format!("{a:.4}"));
    let n = labels.iter().filter(|&&l| l >= 0).count();
    roc_curves(
        path,
        title,
        &[(format!("AUC {area} ({n} jets)"), roc_curve(scores, labels))],
    )
}

/// Colours of successive curves (matplotlib's tab10; the 11th curve reuses the first).
const PALETTE: [RGBColor; 10] = [
    BLUE,
    ORANGE,
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Writes ROC curves `(legend, points)` into one figure titled `title`, with the
/// random-guess diagonal.
pub fn roc_curves(path: &Path, title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    let mut fig = Figure::new(640, 600)?;
    fig.draw(path, |root| -> DrawResult {
        e(root.fill(&WHITE))?;
        let mut chart = e(ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64))?;
        e(chart
            .configure_mesh()
            .x_desc("false-positive rate (label 0 accepted)")
            .y_desc("true-positive rate (label 1 accepted)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw())?;
        e(chart.draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            GREY.stroke_width(1),
        )))?
        .label("random guess")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREY));
        for (i, (label, curve)) in curves.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            e(chart.draw_series(LineSeries::new(curve.iter().copied(), c.stroke_width(2))))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 15)
    })?;
    fig.write(path)
}

/// Writes the training curves of a run's history, titled `title`.
pub fn losses(path: &Path, title: &str, history: &[EpochMetrics]) -> Result<()> {
    let epochs = history.len().max(2) as f64 - 1.0;
    let top = history
        .iter()
        .flat_map(|m| [m.train_loss, m.val_loss])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.1;
    let aucs = history
        .iter()
        .flat_map(|m| [m.train_auc, m.val_auc])
        .flatten()
        .filter(|v| v.is_finite());
    let low = aucs.fold(1.0f64, f64::min).min(0.9);
    let low = ((low - 0.05) * 20.0).floor() / 20.0;
    let mut fig = Figure::new(720, 720)?;
    fig.draw(path, |root| -> DrawResult {
        e(root.fill(&WHITE))?;
        let root = e(root.titled(title, (FONT, 20)))?;
        let (upper, lower) = root.split_vertically(350);
        let panel = |area: &DrawingArea<BitMapBackend, _>,
                     y: std::ops::Range<f64>,
                     ydesc: &str,
                     series: [Series; 2]|
         -> DrawResult {
            let mut chart = e(ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..epochs, y))?;
            e(chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(history.len().clamp(2, 11))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .light_line_style(WHITE.mix(0.0))
                .y_desc(ydesc)
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .draw())?;
            for (name, colour, pts) in series {
                let style = colour.stroke_width(2);
                e(chart.draw_series(LineSeries::new(pts.clone(), style)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
                e(chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled()))))?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight, 14)
        };
        let pts = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .iter()
                .enumerate()
                .filter_map(|(i, m)| f(m).filter(|v| v.is_finite()).map(|v| (i as f64, v)))
                .collect()
        };
        panel(
            &upper,
            0.0..top,
            "loss (classifiers: BCE with logits)",
            [
                ("train", BLUE, pts(&|m| Some(m.train_loss))),
                ("validation", ORANGE, pts(&|m| Some(m.val_loss))),
            ],
        )?;
        panel(
            &lower,
            low..1.0,
            "ROC AUC",
            [
                ("train", BLUE, pts(&|m| m.train_auc)),
                ("validation", ORANGE, pts(&|m| m.val_auc)),
            ],
        )
    })?;
    fig.write(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures are real images: right size, and with ink (curve and text) on them.
    #[test]
    fn figures_are_drawn() {
        let dir = tempfile::tempdir().expect("tmp");
        let scores = [0.1f32, 0.4, 0.35, 0.8, 0.7, 0.2];
        let labels = [0i8, 0, 1, 1, 1, 0];
        let path = dir.path().join("roc.png");
        roc(&path, "test ROC", &scores, &labels).expect("roc");
        let history: Vec<EpochMetrics> = (0..3)
            .map(|i| EpochMetrics {
                epoch: i,
                lr: 1e-3,
                train_loss: 0.7 - 0.1 * i as f64,
                train_auc: Some(0.6 + 0.1 * i as f64),
                val_loss: 0.72 - 0.1 * i as f64,
                val_acc: Some(0.6),
                val_auc: Some(0.62 + 0.1 * i as f64),
                samples_per_s: 10.0,
                train_jets: 100,
            })
            .collect();
        let lpath = dir.path().join("loss.png");
        losses(&lpath, "test run", &history).expect("losses");
        for (p, (w, h)) in [(path, (640, 600)), (lpath, (720, 720))] {
            let dec = png::Decoder::new(std::io::BufReader::new(
                std::fs::File::open(&p).expect("open"),
            ));
            let mut r = dec.read_info().expect("png");
            let mut buf = vec![0; r.output_buffer_size().expect("size")];
            let info = r.next_frame(&mut buf).expect("frame");
            assert_eq!((info.width, info.height), (w, h));
            let px = &buf[..info.buffer_size()];
            let dark = px.chunks(3).filter(|c| c.iter().all(|&v| v < 80)).count();
            let blue = px.chunks(3).filter(|c| c == &[31, 119, 180]).count();
            // Axes, tick labels and titles are black; the curves blue.
            assert!(dark > 2000, "{}: {dark} dark pixels", p.display());
            assert!(blue > 200, "{}: {blue} blue pixels", p.display());
        }
    }
}
