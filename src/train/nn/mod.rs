//! Layers shared by the models: convolutions and pooling on `[B, L, C]` rows ([`rows`]),
//! multi-head self-attention with a key mask ([`attention`]), message passing on the kNN
//! lists ([`graph`]) and the graph convolutions built on it ([`message`]), and image helpers
//! for the generative models ([`image`]).

use burn::prelude::*;

pub mod attention;
pub mod diffusion;
pub mod graph;
pub mod image;
pub mod message;
pub mod pairs;
pub mod rows;
pub mod unet;

/// Pooled jet features `[B, C]` with the run's jet inputs `[B, J]` beside them (what every
/// model's head reads).
pub fn beside_jets(x: Tensor<2>, jets: Option<Tensor<2>>) -> Tensor<2> {
    match jets {
        Some(j) => Tensor::cat(vec![x, j], 1),
        None => x,
    }
}
