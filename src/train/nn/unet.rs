//! The DDPM noise-prediction network (Ho et al. 2020, appendix B, at CPU scale): a UNet of
//! residual blocks [GroupNorm, SiLU, Conv 3×3, + projected time (and class) embedding,
//! GroupNorm, SiLU, Dropout, Conv 3×3] with 1×1 skip convolutions where widths change,
//! stride-2 convolutions down and nearest-neighbour ×2 + Conv 3×3 up, skip connections
//! concatenated level by level, and single-head self-attention at the lowest resolution.
//! The time embedding is sinusoidal → Linear → SiLU → Linear; the class embedding (when
//! conditional) has one extra row for "no label" (classifier-free guidance).

use crate::train::nn::diffusion::timestep_embedding;
use crate::train::nn::image::{crop, pad_to};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};

/// The UNet's sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UNetSizes {
    /// Image channels.
    pub image_channels: usize,
    /// Width of the first level.
    pub base: usize,
    /// Width multiplier of each level (the number of levels is their count, at most 4).
    pub mults: [usize; 4],
    /// Levels used (1 to 4).
    pub levels: usize,
    /// Residual blocks per level on the way down (one more on the way up).
    pub blocks: usize,
    /// Self-attention at the lowest resolution.
    pub attention: bool,
    /// Classes of the conditioning label (0: unconditional).
    pub classes: usize,
    /// Dropout inside the residual blocks.
    pub dropout: f64,
}

fn conv3(i: usize, o: usize, stride: usize, d: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(d)
}

fn norm(c: usize, d: &Device) -> GroupNorm {
    let groups = [8, 4, 2, 1]
        .into_iter()
        .find(|g| c.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(groups, c).init(d)
}

/// A residual block with the time embedding added between its convolutions.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(i: usize, o: usize, temb: usize, dropout: f64, d: &Device) -> Self {
        Self {
            norm1: norm(i, d),
            conv1: conv3(i, o, 1, d),
            time: LinearConfig::new(temb, o).init(d),
            norm2: norm(o, d),
            dropout: DropoutConfig::new(dropout).init(),
            conv2: conv3(o, o, 1, d),
            skip: (i != o).then(|| Conv2dConfig::new([i, o], [1, 1]).init(d)),
        }
    }

    fn forward(&self, x: Tensor<4>, temb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [b, c, _, _] = h.dims();
        let h = h + self.time.forward(silu(temb)).reshape([b, c, 1, 1]);
        let h = self
            .conv2
            .forward(self.dropout.forward(silu(self.norm2.forward(h))));
        match &self.skip {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }
}

/// Single-head self-attention over the pixels, with a residual connection.
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Linear,
    out: Linear,
}

impl Attention {
    fn new(c: usize, d: &Device) -> Self {
        Self {
            norm: norm(c, d),
            qkv: LinearConfig::new(c, 3 * c).init(d),
            out: LinearConfig::new(c, c).init(d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let t = self
            .norm
            .forward(x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2); // [B, HW, C]
        let qkv = self.qkv.forward(t);
        let q = qkv.clone().slice([0..b, 0..h * w, 0..c]);
        let k = qkv.clone().slice([0..b, 0..h * w, c..2 * c]);
        let v = qkv.slice([0..b, 0..h * w, 2 * c..3 * c]);
        let a = softmax(q.matmul(k.swap_dims(1, 2)).div_scalar((c as f64).sqrt()), 2);
        let o = self
            .out
            .forward(a.matmul(v))
            .swap_dims(1, 2)
            .reshape([b, c, h, w]);
        x + o
    }
}

/// One level of the UNet: its residual blocks, and the resampling after them.
#[derive(Module, Debug)]
struct Level {
    blocks: Vec<ResBlock>,
    resample: Option<Conv2d>,
}

/// The noise-prediction UNet.
#[derive(Module, Debug)]
pub struct UNet {
    time1: Linear,
    time2: Linear,
    class: Option<Embedding>,
    input: Conv2d,
    down: Vec<Level>,
    mid1: ResBlock,
    attention: Option<Attention>,
    mid2: ResBlock,
    up: Vec<Level>,
    out_norm: GroupNorm,
    out: Conv2d,
    base: usize,
    levels: usize,
    classes: usize,
}

/// Nearest-neighbour ×2 upsampling.
fn upsample(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

impl UNet {
    /// A UNet of `s`.
    pub fn new(s: UNetSizes, d: &Device) -> Self {
        let temb = 4 * s.base;
        let widths: Vec<usize> = s.mults[..s.levels].iter().map(|m| m * s.base).collect();
        let mut down = Vec::new();
        let mut c = s.base;
        for (l, &w) in widths.iter().enumerate() {
            let blocks = (0..s.blocks)
                .map(|i| ResBlock::new(if i == 0 { c } else { w }, w, temb, s.dropout, d))
                .collect();
            c = w;
            let last = l + 1 == s.levels;
            down.push(Level {
                blocks,
                resample: (!last).then(|| conv3(w, w, 2, d)),
            });
        }
        let mut up = Vec::new();
        for (l, &w) in widths.iter().enumerate().rev() {
            // The first block of a level reads the level's skip beside the input.
            let blocks = (0..=s.blocks)
                .map(|i| ResBlock::new(if i == 0 { c + w } else { w }, w, temb, s.dropout, d))
                .collect();
            c = w;
            up.push(Level {
                blocks,
                resample: (l > 0).then(|| conv3(w, widths[l - 1], 1, d)),
            });
            if l > 0 {
                c = widths[l - 1];
            }
        }
        let deepest = widths[s.levels - 1];
        Self {
            time1: LinearConfig::new(s.base, temb).init(d),
            time2: LinearConfig::new(temb, temb).init(d),
            class: (s.classes > 0).then(|| EmbeddingConfig::new(s.classes + 1, temb).init(d)),
            input: conv3(s.image_channels, s.base, 1, d),
            down,
            mid1: ResBlock::new(deepest, deepest, temb, s.dropout, d),
            attention: s.attention.then(|| Attention::new(deepest, d)),
            mid2: ResBlock::new(deepest, deepest, temb, s.dropout, d),
            up,
            out_norm: norm(s.base * s.mults[0], d),
            out: conv3(s.base * s.mults[0], s.image_channels, 1, d),
            base: s.base,
            levels: s.levels,
            classes: s.classes,
        }
    }

    /// The class index meaning "no label".
    pub fn null_class(&self) -> usize {
        self.classes
    }

    /// The prediction (ε or v, as the schedule's target) `[B, C, H, W]` of noisy images `x` at steps `t`, with class indices
    /// `class` (`[B]`, `null_class()` for none; ignored when unconditional).
    pub fn forward(&self, x: Tensor<4>, t: &[usize], class: Option<Tensor<1, Int>>) -> Tensor<4> {
        let [b, _, h, w] = x.dims();
        let d = x.device();
        let mut temb = self.time2.forward(silu(
            self.time1.forward(timestep_embedding(t, self.base, &d)),
        ));
        if let (Some(e), Some(c)) = (&self.class, class) {
            let n = temb.dims()[1];
            temb = temb + e.forward(c.reshape([b, 1])).reshape([b, n]);
        }
        let mut hcur = self.input.forward(pad_to(x, 1 << (self.levels - 1)));
        let mut skips = Vec::new();
        for l in &self.down {
            for blk in &l.blocks {
                hcur = blk.forward(hcur, temb.clone());
            }
            skips.push(hcur.clone());
            if let Some(r) = &l.resample {
                hcur = r.forward(hcur);
            }
        }
        hcur = self.mid1.forward(hcur, temb.clone());
        if let Some(a) = &self.attention {
            hcur = a.forward(hcur);
        }
        hcur = self.mid2.forward(hcur, temb.clone());
        for l in &self.up {
            let skip = skips.pop().expect("one skip per level");
            hcur = Tensor::cat(vec![hcur, skip], 1);
            for blk in &l.blocks {
                hcur = blk.forward(hcur, temb.clone());
            }
            if let Some(r) = &l.resample {
                hcur = r.forward(upsample(hcur));
            }
        }
        let out = self.out.forward(silu(self.out_norm.forward(hcur)));
        crop(out, h, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(levels: usize, classes: usize) -> UNetSizes {
        UNetSizes {
            image_channels: 3,
            base: 8,
            mults: [1, 2, 2, 2],
            levels,
            blocks: 1,
            attention: true,
            classes,
            dropout: 0.0,
        }
    }

    #[test]
    fn output_has_the_input_shape_for_any_image_size() {
        let d = Device::flex();
        for (levels, h, w) in [(3, 32, 32), (3, 63, 63), (2, 9, 14), (1, 5, 5)] {
            let u = UNet::new(sizes(levels, 2), &d);
            let x = Tensor::<4>::ones([2, 3, h, w], &d);
            let c = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [2]), &d);
            assert_eq!(u.forward(x, &[3, 500], Some(c)).dims(), [2, 3, h, w]);
        }
    }

    #[test]
    fn upsample_repeats_each_pixel() {
        let d = Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &d);
        let v: Vec<f32> = upsample(x).try_into_vec_as::<f32>().unwrap();
        assert_eq!(
            v,
            [
                1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
            ]
        );
    }

    #[test]
    fn the_time_and_the_class_change_the_prediction() {
        let d = Device::flex();
        let u = UNet::new(sizes(2, 2), &d);
        let x = Tensor::<4>::ones([1, 3, 8, 8], &d);
        let c = |k: i64| {
            Some(Tensor::<1, Int>::from_data(
                TensorData::new(vec![k], [1]),
                &d,
            ))
        };
        let a: Vec<f32> = u
            .forward(x.clone(), &[10], c(0))
            .try_into_vec_as::<f32>()
            .unwrap();
        let b: Vec<f32> = u
            .forward(x.clone(), &[900], c(0))
            .try_into_vec_as::<f32>()
            .unwrap();
        let e: Vec<f32> = u.forward(x, &[10], c(1)).try_into_vec_as::<f32>().unwrap();
        let diff = |p: &[f32], q: &[f32]| p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f32>();
        assert!(diff(&a, &b) > 1e-3 && diff(&a, &e) > 1e-3);
    }
}
