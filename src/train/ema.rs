//! The exponential moving average of a model's weights, θ̄ ← d·θ̄ + (1 − d)·θ after every
//! optimiser step (Ho et al. sample DDPMs with d = 0.9999; the loop warms d up as
//! min(d, (1 + n)/(10 + n)) after n steps): the training loop keeps it for
//! models whose contract asks for one, validates it and saves it as the best checkpoint.
//! Buffers (BatchNorm running statistics) are averaged too.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// Every float tensor of a module (parameters and buffers) in visiting order, flattened.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = p.val();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Blends every float tensor with the next collected one.
struct Blend {
    src: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let s = self
            .src
            .next()
            .expect("the average and the model have the same tensors");
        let decay = self.decay;
        p.map(|t| {
            let shape = t.shape();
            t.mul_scalar(decay) + s.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// `average` moved towards `model` by `1 − decay` (the average has no gradients).
pub fn update<M: Module>(average: M, model: &M, decay: f64) -> M {
    let mut c = Collect(Vec::new());
    model.valid().visit(&mut c);
    average.map(&mut Blend {
        src: c.0.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn the_average_moves_by_one_minus_decay() {
        let d = Device::flex();
        let a = LinearConfig::new(2, 3).init(&d);
        let b: Linear = LinearConfig::new(2, 3).init(&d);
        let w = |l: &Linear| l.weight.val().try_into_vec_as::<f32>().unwrap();
        let bias = |l: &Linear| {
            l.bias
                .as_ref()
                .unwrap()
                .val()
                .try_into_vec_as::<f32>()
                .unwrap()
        };
        let (wa, wb, ba, bb) = (w(&a), w(&b), bias(&a), bias(&b));
        let m = update(a, &b, 0.9);
        for (g, (x, y)) in w(&m).iter().zip(wa.iter().zip(&wb)) {
            assert!((g - (0.9 * x + 0.1 * y)).abs() < 1e-6);
        }
        for (g, (x, y)) in bias(&m).iter().zip(ba.iter().zip(&bb)) {
            assert!((g - (0.9 * x + 0.1 * y)).abs() < 1e-6);
        }
    }
}
