//! The loader's image view: the stored points scattered back onto the pixel grid reproduce
//! the source images exactly, pooled and with pixel transforms (`zero` included), and image
//! transforms that cannot apply are refused with the YAML line.

use crate::common::*;
use jetpipe::engine::run;
use jetpipe::loader::Loader;
use jetpipe::loader::spec::parse_loader;

/// The image view scatters the stored points back onto the pixel grid: at a resolution that
/// keeps every hit (400 points of a 20 × 20 image) it is the source image exactly, pooled it is
/// the source's block sums, and pixel transforms apply after pooling. Checked for every jet,
/// empty ones included, against the images written to the HDF5 file.
#[test]
fn image_view_reproduces_the_source_images() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("img.h5");
    let (h, w, c) = (20, 20, 3);
    let jets = random_jets(11, 24, h, w, c);
    write_h5(&h5, &jets, &Write::default());
    let out = dir.path().join("out");
    let cfg = config(
        &[&h5],
        &out,
        "stages:\n  pointcloud:\n    resolutions: [400]\n",
    );
    run(&cfg, &quiet()).unwrap();
    for (pool, transforms) in [
        (1usize, "[]"),
        (3, "[log1p, {scale: 2.0}]"),
        (2, "[log1p, {scale: 2.0}, {zero: -1.5}]"),
    ] {
        let spec = parse_loader(
            &format!(
                "loader:\n  dataset: \"{}\"\n  resolution: 400\n  shuffle: false\n  batch_size: 5\n  image: {{size: [{h}, {w}], pool: {pool}, transforms: {transforms}}}\n",
                out.display()
            ),
            "t.yaml",
        )
        .unwrap();
        let (hp, wp) = (h.div_ceil(pool), w.div_ceil(pool));
        let mut seen = 0;
        for b in Loader::open(&spec).unwrap().epoch(0).unwrap() {
            let b = b.unwrap();
            assert_eq!(b.image_dims, [c, hp, wp]);
            for (i, id) in b.jet_ids.iter().enumerate() {
                let j = (id & 0xffff_ffff) as usize;
                for ch in 0..c {
                    for y in 0..hp {
                        for x in 0..wp {
                            let mut want = 0f32;
                            for r in y * pool..((y + 1) * pool).min(h) {
                                for col in x * pool..((x + 1) * pool).min(w) {
                                    want += jets.images[((j * h + r) * w + col) * c + ch];
                                }
                            }
                            if pool > 1 {
                                want = want.ln_1p() * 2.0;
                            }
                            if pool == 2 && want == 0.0 {
                                want = -1.5; // `zero`: the empty pixels
                            }
                            let got = b.image[((i * c + ch) * hp + y) * wp + x];
                            assert!(
                                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                                "jet {j} channel {ch} pixel ({y}, {x}) pool {pool}: {got} vs {want}"
                            );
                        }
                    }
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 24);
    }
    // Per-jet and dataset transforms are refused for images, and `zero` must come last with a
    // negative value (empty pixels below every hit), each error naming the line.
    for (bad, why) in [
        ("[standardise]", "does not apply to images"),
        ("[{zero: -1}, log1p]", "last image transform"),
        ("[log1p, {zero: 0.5}]", "last image transform"),
    ] {
        let e = parse_loader(
            &format!("loader:\n  dataset: x\n  resolution: 400\n  image:\n    transforms: {bad}\n"),
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.yaml:5") && e.contains(why), "{bad}: {e}");
    }
}
