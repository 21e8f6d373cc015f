//! Sets of jet images in a model's units (the loader's image view) turned back into detector
//! images and into a jetpipe dataset: the image transforms undone (`scale`, then `log1p`;
//! `clip` cannot be undone), each pooled pixel's energy put on one pixel of its block (the
//! block's centre) of the source-sized grid, written as an HDF5 file with the CMS schema
//! (`X_jets` NHWC float32, `y`) and converted with the run dataset's own conversion settings.
//! So generated, reconstructed and real reference jets pass through the same pooling and the
//! same code (`stages::features`) before they are compared, and every reader works on them.

use crate::config::PipelineConfig;
use crate::engine::{RunOptions, run};
use crate::error::{Error, Result};
use crate::loader::preprocess::Transform;
use crate::loader::spec::ImageSpec;
use crate::store::manifest::Manifest;
use std::path::{Path, PathBuf};

/// Jet images in the model's units.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// `[C, H, W]` of each image.
    pub dims: [usize; 3],
    /// `[n, C, H, W]`, row-major.
    pub images: Vec<f32>,
    /// Labels (`y`), −1 where a jet has none.
    pub labels: Vec<i8>,
    /// The image transforms the values went through (their units).
    pub transforms: Vec<Transform>,
}

impl ImageSet {
    /// An empty set of `dims` images in the units of `transforms`.
    pub fn new(dims: [usize; 3], transforms: &[Transform]) -> Self {
        Self {
            dims,
            images: Vec::new(),
            labels: Vec::new(),
            transforms: transforms.to_vec(),
        }
    }

    /// The same jets in the units of `transforms`.
    pub fn in_units(&self, transforms: &[Transform]) -> Self {
        if transforms == self.transforms {
            return self.clone();
        }
        Self {
            images: self
                .images
                .iter()
                .map(|&v| from_energy(to_energy(v, &self.transforms), transforms))
                .collect(),
            transforms: transforms.to_vec(),
            ..self.clone()
        }
    }

    /// Energy of pixel `p` of channel `ch` of image `i`.
    pub fn energy(&self, i: usize, ch: usize, p: usize) -> f32 {
        let [_, h, w] = self.dims;
        to_energy(self.image(i)[ch * h * w + p], &self.transforms)
    }

    /// Jets in the set.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn per_image(&self) -> usize {
        self.dims.iter().product()
    }

    /// Image `i`, `[C, H, W]`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `n` jets.
    pub fn truncate(&mut self, n: usize) {
        self.images.truncate(n * self.per_image());
        self.labels.truncate(n);
    }
}

/// Energies above this (a diverged model's output) are capped, so every set converts.
pub const MAX_ENERGY: f32 = 1e6;

/// A pixel value in the model's units back in energy units: the transforms undone in reverse
/// order (`clip` is kept as is, `zero` turns values ≤ 0 into 0), negatives and NaN to 0, at
/// most [`MAX_ENERGY`].
pub fn to_energy(v: f32, transforms: &[Transform]) -> f32 {
    let mut x = v;
    for t in transforms.iter().rev() {
        x = match *t {
            Transform::Log1p => x.exp_m1(),
            Transform::Scale(f) if f != 0.0 => x / f,
            // Empty pixels lie at v < 0, hits above 0.
            Transform::Zero(_) if x <= 0.0 => 0.0,
            _ => x,
        };
    }
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, MAX_ENERGY)
    }
}

/// An energy in the units of `transforms` (as the loader applies them).
pub fn from_energy(e: f32, transforms: &[Transform]) -> f32 {
    let mut x = e;
    for t in transforms {
        x = match *t {
            Transform::Log1p => x.ln_1p(),
            Transform::Scale(f) => x * f,
            Transform::Clip([lo, hi]) => x.clamp(lo, hi),
            Transform::Zero(v) if x == 0.0 => v,
            _ => x,
        };
    }
    x
}

/// The set as source-sized detector images, `[n, H0, W0, C]` (NHWC, energies; `spec` gives
/// the source size and the pooling): pooled pixel
/// (i, j) lands on pixel (min(p·i + p/2, H0 − 1), min(p·j + p/2, W0 − 1)) for pool size p.
pub fn detector_images(set: &ImageSet, spec: &ImageSpec) -> Vec<f32> {
    let [c, h, w] = set.dims;
    let (h0, w0) = (spec.size[0] as usize, spec.size[1] as usize);
    let p = spec.pool as usize;
    let mut out = vec![0f32; set.len() * h0 * w0 * c];
    for j in 0..set.len() {
        let img = set.image(j);
        let dst = &mut out[j * h0 * w0 * c..(j + 1) * h0 * w0 * c];
        for ch in 0..c {
            for r in 0..h {
                for q in 0..w {
                    let e = to_energy(img[(ch * h + r) * w + q], &set.transforms);
                    if e > 0.0 {
                        let (rr, qq) = ((p * r + p / 2).min(h0 - 1), (p * q + p / 2).min(w0 - 1));
                        dst[(rr * w0 + qq) * c + ch] = e;
                    }
                }
            }
        }
    }
    out
}

/// Writes `images` (`[n, h, w, c]`) and labels as an HDF5 file with the CMS schema.
pub fn write_h5(
    path: &Path,
    images: &[f32],
    shape: [usize; 4],
    labels: Option<&[i8]>,
) -> Result<()> {
    let bad = |e: hdf5::Error| Error::Output {
        path: path.to_path_buf(),
        msg: format!("writing HDF5: {e}"),
    };
    let f = hdf5::File::create(path).map_err(bad)?;
    f.new_dataset::<f32>()
        .shape(shape)
        .create("X_jets")
        .and_then(|d| d.write_raw(images))
        .map_err(bad)?;
    if let Some(l) = labels {
        let y: Vec<f32> = l.iter().map(|&v| f32::from(v)).collect();
        f.new_dataset::<f32>()
            .shape([y.len()])
            .create("y")
            .and_then(|d| d.write_raw(&y))
            .map_err(bad)?;
    }
    f.close().map_err(bad)
}

/// The conversion settings of `dataset` (from its manifest) for the images in `h5` into
/// `out`: no `pt`/`m0` (generated jets have none), a label only if the set has labels.
pub fn conversion_config(
    dataset: &Path,
    h5: &Path,
    out: &Path,
    labelled: bool,
) -> Result<PipelineConfig> {
    let m = Manifest::read(dataset)?.ok_or_else(|| Error::Output {
        path: dataset.to_path_buf(),
        msg: "no manifest.json: the run's dataset is needed for its conversion settings".into(),
    })?;
    let mut v = m.config.clone();
    let src = &mut v["source"];
    src["files"] = serde_json::json!([h5.display().to_string()]);
    src["datasets"] = serde_json::json!({
        "images": "X_jets", "pt": null, "m0": null,
        "label": if labelled { serde_json::json!("y") } else { serde_json::Value::Null },
    });
    src["layout"] = serde_json::json!("nhwc");
    src["offset"] = serde_json::json!(0);
    src["limit"] = serde_json::Value::Null;
    v["sink"]["path"] = serde_json::json!(out.display().to_string());
    serde_json::from_value(v).map_err(|e| Error::Output {
        path: dataset.join("manifest.json"),
        msg: format!("conversion settings: {e}"),
    })
}

/// Writes `set` as `dir/images.h5` and converts it into `dir/dataset` with the conversion
/// settings of `dataset`; returns the new dataset's directory.
pub fn to_dataset(set: &ImageSet, spec: &ImageSpec, dataset: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let h5 = dir.join("images.h5");
    let c = set.dims[0];
    let shape = [set.len(), spec.size[0] as usize, spec.size[1] as usize, c];
    let labelled = set.labels.iter().any(|&l| l >= 0);
    let labels: Vec<i8> = set.labels.iter().map(|&l| l.max(0)).collect();
    write_h5(
        &h5,
        &detector_images(set, spec),
        shape,
        labelled.then_some(&labels[..]),
    )?;
    let out = dir.join("dataset");
    let cfg = conversion_config(dataset, &h5, &out, labelled)?;
    run(
        &cfg,
        &RunOptions {
            overwrite: true,
            quiet: true,
            ..Default::default()
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_are_undone_in_reverse_order() {
        let t = [Transform::Log1p, Transform::Scale(0.5)];
        let e = 7.25f32;
        let v = e.ln_1p() * 0.5;
        assert!((to_energy(v, &t) - e).abs() < 1e-5);
        assert!((from_energy(e, &t) - v).abs() < 1e-6);
        assert_eq!(to_energy(-0.3, &t), 0.0);
        assert_eq!(to_energy(500.0, &t), MAX_ENERGY);
        assert_eq!(to_energy(f32::NAN, &t), 0.0);
        // Empty pixels at −1: back to 0 from anywhere ≤ 0, hits unchanged.
        let z = [
            Transform::Log1p,
            Transform::Scale(0.5),
            Transform::Zero(-1.0),
        ];
        assert_eq!(from_energy(0.0, &z), -1.0);
        assert!((from_energy(e, &z) - v).abs() < 1e-6);
        assert!((to_energy(v, &z) - e).abs() < 1e-5);
        for x in [-1.0, -0.4, 0.0] {
            assert_eq!(to_energy(x, &z), 0.0);
        }
    }

    #[test]
    fn pooled_pixels_land_on_their_block_centre() {
        let spec = ImageSpec {
            channels: vec!["a".into(), "b".into()],
            size: [5, 5],
            pool: 2,
            transforms: vec![],
        };
        // 3 × 3 pooled images of 2 channels: one value per channel.
        let mut img = vec![0f32; 2 * 9];
        img[4] = 2.0; // channel a, pooled (1, 1) → (3, 3)
        img[9 + 8] = 5.0; // channel b, pooled (2, 2) → (min(5, 4), min(5, 4)) = (4, 4)
        let set = ImageSet {
            dims: [2, 3, 3],
            images: img,
            labels: vec![1],
            transforms: vec![],
        };
        let d = detector_images(&set, &spec);
        assert_eq!(d.len(), 5 * 5 * 2);
        assert_eq!(d[(3 * 5 + 3) * 2], 2.0);
        assert_eq!(d[(4 * 5 + 4) * 2 + 1], 5.0);
        assert_eq!(d.iter().filter(|&&v| v != 0.0).count(), 2);
    }
}
