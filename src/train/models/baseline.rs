//! The baseline every report compares against: logistic regression on the `jets` table's
//! jet-level features (pt, m0, hit counts, channel sums and fractions, widths, pT_D, core and
//! leading fractions, shape axes, …; all of them, or the run's `jet_inputs`), standardised
//! with the training set's mean and standard deviation (`model: features_baseline`). It trains
//! in the same loop as every model, so every key of the training YAML applies to it.

use crate::train::contract::{Classifier, Inputs, Needs};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// The baseline reads the jet inputs only: every numeric column unless `jet_inputs` names some.
pub const NEEDS: Needs = Needs {
    points: false,
    mask: false,
    neighbours: false,
    all_jet_inputs_by_default: true,
    image: false,
};

/// Logistic regression: one linear layer on the jet inputs.
#[derive(Module, Debug)]
pub struct Logistic {
    linear: Linear,
}

impl Logistic {
    /// A model of `inputs` jet features.
    pub fn new(inputs: usize, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(inputs, 1).init(device),
        }
    }
}

impl Classifier for Logistic {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        let j = x
            .jets
            .clone()
            .expect("model contract: the features baseline gets jet inputs");
        self.linear.forward(j).squeeze_dim::<1>(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_are_the_linear_function_of_the_jet_inputs() {
        let device = Device::flex();
        let m = Logistic::new(3, &device);
        let j = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], &device);
        let x = Inputs {
            points: None,
            mask: None,
            neighbours: None,
            neighbour_mask: None,
            jets: Some(j.clone()),
            image: None,
        };
        let z: Vec<f32> = m.logits(&x).try_into_vec_as::<f32>().unwrap();
        let w: Vec<f32> = m.linear.weight.val().try_into_vec_as::<f32>().unwrap();
        let b = m.linear.bias.as_ref().unwrap().val().into_scalar::<f32>();
        let rows = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]];
        for (r, zr) in rows.iter().zip(&z) {
            let want = b + r.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>();
            assert!((zr - want).abs() < 1e-5, "{zr} vs {want}");
        }
        assert_eq!(m.trainable_params(), 4);
    }
}
