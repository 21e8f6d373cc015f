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
    let y = relu(bn1.forward(pointwise(first, x.clone())));
    let y = relu(bn2.forward(conv3(middle, y.reshape([b, l, c]))));
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
