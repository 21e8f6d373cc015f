//! PNG figures drawn with plotters into an RGB buffer and encoded with `png`: the ROC curve
//! and the per-epoch loss/AUC curves of a training run. Text uses the bundled DejaVu Sans
//! (`assets/fonts`, Bitstream Vera licence) through plotters' ab_glyph backend, so no system
//! font library is needed.

use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// The font family every figure uses.
pub const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font once per process.
pub fn fonts() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    ok.then_some(())
        .ok_or_else(|| Error::Config("the bundled plot font could not be loaded".into()))
}

/// An RGB image being drawn, `w`×`h` pixels.
pub struct Figure {
    /// Row-major RGB bytes.
    pub px: Vec<u8>,
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels.
    pub h: u32,
}

impl Figure {
    /// A white `w`×`h` figure.
    pub fn new(w: u32, h: u32) -> Result<Self> {
        Self::from_pixels(vec![255; (w * h * 3) as usize], w, h)
    }

    /// A figure over existing RGB pixels (`w`×`h`, row-major).
    pub fn from_pixels(px: Vec<u8>, w: u32, h: u32) -> Result<Self> {
        fonts()?;
        Ok(Self { px, w, h })
    }

    /// Draws on the figure; errors name `path`.
    pub fn draw(
        &mut self,
        path: &Path,
        f: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> DrawResult,
    ) -> Result<()> {
        let root = BitMapBackend::with_buffer(&mut self.px, (self.w, self.h)).into_drawing_area();
        f(&root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|msg| Error::Output {
                path: path.to_path_buf(),
                msg: format!("drawing the figure: {msg}"),
            })
    }

    /// Writes the figure as an 8-bit RGB PNG.
    pub fn write(&self, path: &Path) -> Result<()> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), self.w, self.h);
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

/// What a drawing closure returns: plotters' errors as text.
pub type DrawResult = std::result::Result<(), String>;

/// Turns any plotters error into text.
pub fn e<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> std::result::Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Black → red → yellow → white for t in [0, 1] (jet-image colour scale).
pub fn heat(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let c = |x: f32| (x.clamp(0.0, 1.0) * 255.0) as u8;
    [c(3.0 * t), c(3.0 * t - 1.0), c(3.0 * t - 2.0)]
}
