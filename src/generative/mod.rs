//! Evaluation of generative models of jets (issue 21): distribution metrics between real and
//! generated samples ([`metrics`]). The models themselves are not built yet.

pub mod metrics;

#[cfg(test)]
mod tests;
