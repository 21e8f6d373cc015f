//! Helpers for models of jet images `[B, C, H, W]`: zero-padding to a multiple of the
//! encoder's total stride and cropping back, and the detector-like output (non-negative,
//! zero-suppressed) of a generated or reconstructed image.

use burn::prelude::*;
use burn::tensor::ops::PadMode;

/// `x` zero-padded at the bottom and right so both sides are multiples of `multiple`.
pub fn pad_to(x: Tensor<4>, multiple: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let (ph, pw) = (
        h.next_multiple_of(multiple) - h,
        w.next_multiple_of(multiple) - w,
    );
    if ph == 0 && pw == 0 {
        return x;
    }
    x.pad((0, pw, 0, ph), PadMode::Constant(0.0))
}

/// The top-left `h × w` pixels of `x`.
pub fn crop(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [b, c, hh, ww] = x.dims();
    if hh == h && ww == w {
        return x;
    }
    x.slice([0..b, 0..c, 0..h, 0..w])
}

/// A model's output image as the detector would record it: negative values become 0 and
/// pixels below `threshold` (in the model's transformed units) are suppressed to 0, as the
/// detector's zero suppression leaves ~97 % of pixels empty.
pub fn detector_like(x: Tensor<4>, threshold: f32) -> Tensor<4> {
    let keep = x.clone().greater_equal_elem(threshold.max(0.0)).float();
    x.clamp_min(0.0) * keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_then_crop_is_the_identity_and_pads_with_zeros() {
        let d = Device::flex();
        let v: Vec<f32> = (0..2 * 3 * 5 * 7).map(|i| i as f32 + 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 3, 5, 7]), &d);
        let p = pad_to(x, 4);
        assert_eq!(p.dims(), [2, 3, 8, 8]);
        let total: f32 = p.clone().sum().into_scalar();
        assert_eq!(total, v.iter().sum::<f32>());
        let back: Vec<f32> = crop(p, 5, 7).try_into_vec_as::<f32>().unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn detector_like_clamps_and_suppresses() {
        let d = Device::flex();
        let x = Tensor::<4>::from_floats([[[[-1.0, 0.05, 0.1, 2.0]]]], &d);
        let y: Vec<f32> = detector_like(x, 0.1).try_into_vec_as::<f32>().unwrap();
        assert_eq!(y, [0.0, 0.0, 0.1, 2.0]);
    }
}
