//! Layers shared by the models: convolutions and pooling on `[B, L, C]` rows ([`rows`]) and
//! multi-head self-attention with a key mask ([`attention`]).

pub mod attention;
pub mod rows;
