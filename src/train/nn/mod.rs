//! Layers shared by the models: convolutions and pooling on `[B, L, C]` rows ([`rows`]),
//! multi-head self-attention with a key mask ([`attention`]), message passing on the kNN
//! lists ([`graph`]) and the graph convolutions built on it ([`message`]).

pub mod attention;
pub mod graph;
pub mod message;
pub mod rows;
