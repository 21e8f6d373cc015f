//! Convolutions and pooling on `[B, L, C]` rows (one row per point or token), written with the
//! weights of Burn's `Conv1d` modules: each convolution is one matrix product over all `B·L`
//! rows, which is how the models run them (faster on the CPU than Burn's `[B, C, L]` modules;
//! tests check equality with those modules, values and gradients).

use burn::nn::BatchNorm;
use burn::nn::conv::Conv1d;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Adds the bias of `conv` (if any) to `[N, O]`.
fn bias(conv: &Conv1d, y: Tensor<2>) -> Tensor<2> {
    match &conv.bias {
        Some(b) => y + b.val().unsqueeze_dim::<2>(0),
        None => y,
    }
}

/// The weight `[O, C, K]` of `conv` as the `[K·C, O]` matrix of an im2col product, whose
/// column `j·C + i` holds input channel `i` at offset `j`.
fn im2col_weight(conv: &Conv1d) -> Tensor<2> {
    let [o, c, k] = conv.weight.dims();
    conv.weight.val().permute([2, 1, 0]).reshape([k * c, o])
}

/// A kernel-size-1 convolution of rows `[N, C]`: `[N, O]`.
pub fn pointwise(conv: &Conv1d, x: Tensor<2>) -> Tensor<2> {
    let [o, c, _] = conv.weight.dims();
    let w = conv.weight.val().reshape([o, c]).transpose();
    bias(conv, x.matmul(w))
}

/// A kernel-size-3, stride-1, padding-1 convolution of `[B, L, C]`: `[B·L, O]`, as one
/// matrix product of the three shifted copies `[B·L, 3C]` (im2col).
pub fn conv3(conv: &Conv1d, x: Tensor<3>) -> Tensor<2> {
    let [b, l, c] = x.dims();
    let k = conv.weight.dims()[2];
    debug_assert_eq!((k, conv.stride), (3, 1));
    let zeros = Tensor::<3>::zeros([b, 1, c], &x.device());
    let padded = Tensor::cat(vec![zeros.clone(), x, zeros], 1);
    let cols: Vec<_> = (0..k).map(|j| padded.clone().narrow(1, j, l)).collect();
    let cols = Tensor::cat(cols, 2).reshape([b * l, k * c]);
    bias(conv, cols.matmul(im2col_weight(conv)))
}

/// A kernel-size-2, stride-2, unpadded convolution of `[B, L, C]` (a learned 2:1 pooling):
/// `[B, L/2, O]`; an odd last row is dropped, as PyTorch does. Rows `2j, 2j+1` side by side
/// are already the im2col row `j`, so this is one reshape and one matrix product.
pub fn conv_pool2(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let [b, l, c] = x.dims();
    let [o, _, k] = conv.weight.dims();
    debug_assert_eq!((k, conv.stride), (2, 2));
    let h = l / 2;
    let pairs = x.narrow(1, 0, 2 * h).reshape([b * h, 2 * c]);
    bias(conv, pairs.matmul(im2col_weight(conv))).reshape([b, h, o])
}

/// Batch norm of rows `[N, C]` (one column per channel), the same function as `bn.forward`
/// (batch statistics and a running-statistics update when training, the running statistics
/// otherwise). Training, it is composed of row reductions (`mean_dim(0)`) and broadcasts on
/// the row layout: Burn 0.22's fused `batch_norm_train` reduces channel-major, so on rows it
/// transposes the activation twice forward and twice backward, about 12 % of a ResNet-PC
/// 1024_M training step (`perf`, issue 26). This takes a 1-thread step from about 100 to
/// 111 jets/s (1024_M; 256_M unchanged: `RAYON_NUM_THREADS=1 TRAIN_STEP_ONLY_ROWS=1
/// TRAIN_STEP_VARIANTS=1024_M,256_M TRAIN_STEP_MODELS=none TRAIN_STEP_TORCH_VARIANTS=none
/// cargo test --bench train_step`, before and after this function).
pub fn batch_norm(bn: &BatchNorm, x: Tensor<2>) -> Tensor<2> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let c = x.dims()[1];
    // The mean in two passes (the mean of the once-centred rows corrects the first: the
    // corrected two-pass algorithm). A column sum accumulates row after row; with one pass
    // the output error on 3072 rows of mean 5 and std 0.05 was 2.3e-4 (Burn: 6e-6), with two
    // it stays below the 1e-5 that `row_batch_norm_is_accurate_against_float64` allows
    // (Burn's contiguous sums are pairwise, about 4e-7). Summing blocks of rows first
    // matched Burn's accuracy but cost the speed this function exists for.
    let first = x.clone().mean_dim(0);
    let shifted = x - first.clone();
    let correction = shifted.clone().mean_dim(0);
    let mean = first + correction.clone();
    let centered = shifted - correction;
    // Biased, as Burn's and PyTorch's normalisation.
    let variance = centered.clone().square().mean_dim(0);
    // Burn's order of operations: normalise, then scale and shift.
    let std = (variance.clone() + bn.epsilon).sqrt();
    let y = centered / std * bn.gamma.val().reshape([1, c]) + bn.beta.val().reshape([1, c]);
    let device = y.device();
    let m = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<2>| {
        let old = state.value_sync().to_device(&device);
        state.update(
            old.mul_scalar(1.0 - m)
                .add(batch.detach().reshape([c]).mul_scalar(m))
                .detach(),
        );
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, variance);
    y
}

/// The residual body of ResNet-PC's blocks and of the Aggregation Transformer's CNN blocks on
/// `[B, L, C]`: 1×1 `first` → BN → ReLU → k=3 `middle` → BN → ReLU → 1×1 `last`, plus a 1×1
/// `shortcut`, then ReLU; `[B, L, O]`. Each convolution is one matrix product over all `B·L` rows, and
/// batch norm normalises `[B·L, C]`.
pub fn residual(
    first: &Conv1d,
    bn1: &BatchNorm,
    middle: &Conv1d,
    bn2: &BatchNorm,
    last: &Conv1d,
    shortcut: &Conv1d,
    x: Tensor<3>,
) -> Tensor<3> {
    let [b, l, c] = x.dims();
    let x = x.reshape([b * l, c]);
    let y = relu(batch_norm(bn1, pointwise(first, x.clone())));
    let y = relu(batch_norm(bn2, conv3(middle, y.reshape([b, l, c]))));
    let y = pointwise(last, y) + pointwise(shortcut, x);
    let o = y.dims()[1];
    relu(y).reshape([b, l, o])
}

/// MaxPool1d(2, 2) along `L` of `[B, L, C]` (an odd last row is dropped, as PyTorch does).
pub fn max_pool2(x: Tensor<3>) -> Tensor<3> {
    let [b, l, c] = x.dims();
    let h = l / 2;
    let pairs = x.narrow(1, 0, 2 * h).reshape([b, h, 2, c]);
    let even = pairs.clone().narrow(2, 0, 1);
    even.max_pair(pairs.narrow(2, 1, 1)).reshape([b, h, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig1d;
    use burn::nn::conv::Conv1dConfig;
    use burn::nn::pool::MaxPool1dConfig;
    use burn::tensor::Distribution;

    fn close(a: Tensor<3>, b: Tensor<3>) -> bool {
        let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-6);
        (a - b).abs().max().into_scalar::<f32>() / scale < 1e-5
    }

    #[test]
    fn row_convolutions_match_conv1d_on_random_inputs() {
        let device = Device::flex();
        for l in [7, 8] {
            let x = Tensor::<3>::random([3, l, 5], Distribution::Normal(0.0, 1.0), &device);
            let to_rows = |y: Tensor<3>| y.swap_dims(1, 2);
            let c1 = Conv1dConfig::new(5, 4, 1).init(&device);
            let got = pointwise(&c1, x.clone().reshape([3 * l, 5])).reshape([3, l, 4]);
            assert!(close(got, to_rows(c1.forward(x.clone().swap_dims(1, 2)))));
            let c3 = Conv1dConfig::new(5, 4, 3)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(&device);
            let got = conv3(&c3, x.clone()).reshape([3, l, 4]);
            assert!(close(got, to_rows(c3.forward(x.clone().swap_dims(1, 2)))));
            let c2 = Conv1dConfig::new(5, 4, 2).with_stride(2).init(&device);
            let want = to_rows(c2.forward(x.clone().swap_dims(1, 2)));
            let got = conv_pool2(&c2, x);
            assert_eq!(got.dims(), [3, l / 2, 4]);
            assert!(close(got, want), "length {l}");
        }
    }

    /// Training mode: the same output, input/γ/β gradients and running statistics as Burn's
    /// `BatchNorm::forward` on the same `[N, C]` rows (random, non-zero-mean inputs and a
    /// non-uniform loss); inference mode is `forward` itself.
    #[test]
    fn row_batch_norm_matches_the_module_in_training() {
        use burn::nn::BatchNormConfig;
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([500, 6], Distribution::Normal(0.5, 2.0), &device);
        let w = Tensor::<2>::random([500, 6], Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<1>::random([6], Distribution::Normal(1.0, 0.3), &device);
        let b = Tensor::<1>::random([6], Distribution::Normal(0.0, 0.3), &device);
        let init = || {
            let mut bn = BatchNormConfig::new(6).init(&device);
            bn.gamma = bn.gamma.map(|_| g.clone().detach().require_grad());
            bn.beta = bn.beta.map(|_| b.clone().detach().require_grad());
            bn
        };
        let (ours, theirs) = (init(), init());
        let xa = x.clone().detach().require_grad();
        let xb = x.detach().require_grad();
        let ya = batch_norm(&ours, xa.clone());
        let yb = theirs.forward(xb.clone());
        let rel = |a: Tensor<2>, b: Tensor<2>| {
            let s = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
            (a - b).abs().max().into_scalar::<f32>() / s
        };
        assert!(rel(ya.clone(), yb.clone()) < 1e-5, "outputs");
        let ga = (ya * w.clone()).sum().backward();
        let gb = (yb * w).sum().backward();
        assert!(
            rel(xa.grad(&ga).unwrap(), xb.grad(&gb).unwrap()) < 1e-4,
            "input gradient"
        );
        for (pa, pb) in [(&ours.gamma, &theirs.gamma), (&ours.beta, &theirs.beta)] {
            let (a, b) = (pa.val().grad(&ga).unwrap(), pb.val().grad(&gb).unwrap());
            assert!(
                rel(a.unsqueeze_dim(0), b.unsqueeze_dim(0)) < 1e-4,
                "γ/β gradient"
            );
        }
        for (sa, sb) in [
            (&ours.running_mean, &theirs.running_mean),
            (&ours.running_var, &theirs.running_var),
        ] {
            let (a, b) = (sa.value_sync(), sb.value_sync());
            assert!(
                rel(a.unsqueeze_dim(0), b.unsqueeze_dim(0)) < 1e-5,
                "running statistics"
            );
        }
        // The statistics moved from their initial 0 and 1.
        let mean = ours
            .running_mean
            .value_sync()
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(mean > 0.01, "running mean not updated");
    }

    /// Training-mode output against a float64 computation from the same inputs, including an
    /// ill-conditioned column (mean 5, std 0.05) over many rows, where a plain column sum
    /// was 40× less accurate than Burn's batch norm.
    #[test]
    fn row_batch_norm_is_accurate_against_float64() {
        use burn::nn::BatchNormConfig;
        let device = Device::flex().autodiff();
        for (rows, mean, std) in [(3072, 5.0, 0.05), (3072, 0.0, 1.0), (37, 0.5, 2.0)] {
            let x = Tensor::<2>::random([rows, 4], Distribution::Normal(mean, std), &device);
            let xs: Vec<f32> = x.clone().into_data().try_to_vec().unwrap();
            let bn = BatchNormConfig::new(4).init(&device);
            let y: Vec<f32> = batch_norm(&bn, x).into_data().try_to_vec().unwrap();
            let mut worst = 0f64;
            for c in 0..4 {
                let col: Vec<f64> = (0..rows).map(|i| f64::from(xs[i * 4 + c])).collect();
                let m = col.iter().sum::<f64>() / rows as f64;
                let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / rows as f64;
                for (i, a) in col.iter().enumerate() {
                    let want = (a - m) / (v + 1e-5).sqrt();
                    worst = worst.max((f64::from(y[i * 4 + c]) - want).abs());
                }
            }
            assert!(
                worst < 1e-5,
                "{rows} rows, mean {mean}, std {std}: error {worst:e}"
            );
        }
    }

    #[test]
    fn row_max_pool_matches_max_pool1d_on_odd_lengths() {
        let device = Device::flex();
        let pool = MaxPool1dConfig::new(2).with_stride(2).init();
        let x = Tensor::<3>::from_floats(
            [[[1.0, 5.0, -2.0], [3.0, 0.0, -1.0], [2.0, 7.0, -5.0]]],
            &device,
        );
        // x is [B=1, L=3, C=3]; MaxPool1d takes [B, C, L] and drops the odd last row.
        let want = pool.forward(x.clone().swap_dims(1, 2)).swap_dims(1, 2);
        let got = max_pool2(x);
        assert_eq!(got.dims(), [1, 1, 3]);
        assert_eq!(
            got.into_data().try_to_vec::<f32>().unwrap(),
            want.into_data().try_to_vec::<f32>().unwrap()
        );
    }
}
