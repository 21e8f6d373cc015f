//! The loader's Burn adapter: a [`Batch`] of plain buffers becomes the model's [`Inputs`] on a
//! device, holding only what the model [`Needs`]. The batch is consumed so its buffers move
//! into the tensor data without a copy on the host (the device upload is the only copy).

use crate::loader::Batch;
use crate::train::contract::{Inputs, Needs};
use burn::prelude::*;

/// A batch as tensors, with its host-side ids and labels.
#[derive(Debug, Clone)]
pub struct BatchTensors {
    /// What the model reads (jet inputs are added by the training loop).
    pub inputs: Inputs,
    /// `[B]` labels as stored (−1 where absent).
    pub labels: Tensor<1, Int>,
    /// Jet ids (host side, to join predictions with the `jets` table).
    pub jet_ids: Vec<u64>,
    /// Labels (host side).
    pub label_values: Vec<i8>,
}

/// Moves what `needs` asks for of `batch` onto `device`.
pub fn to_tensors(batch: Batch, needs: Needs, device: &Device) -> BatchTensors {
    let (b, r, f, k) = (batch.size, batch.res, batch.features, batch.k);
    let nb = needs.neighbours && k > 0;
    let nmask = nb.then(|| batch.neighbour_mask());
    let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
    let inputs = Inputs {
        mask: needs.mask.then(|| {
            let m: Vec<f32> = batch.mask.iter().map(|&m| f32::from(m)).collect();
            Tensor::from_data(TensorData::new(m, [b, r]), device)
        }),
        points: needs
            .points
            .then(|| Tensor::from_data(TensorData::new(batch.points, [b, r, f]), device)),
        neighbours: nb.then(|| {
            let v: Vec<i64> = batch.neighbours.iter().map(|&x| i64::from(x)).collect();
            Tensor::from_data(TensorData::new(v, [b, r, k]), device)
        }),
        neighbour_mask: nmask.map(|m| {
            let v: Vec<f32> = m.iter().map(|&x| f32::from(x)).collect();
            Tensor::from_data(TensorData::new(v, [b, r, k]), device)
        }),
        jets: None,
        image: (needs.image && !batch.image.is_empty()).then(|| {
            let [c, h, w] = batch.image_dims;
            Tensor::from_data(TensorData::new(batch.image, [b, c, h, w]), device)
        }),
    };
    BatchTensors {
        inputs,
        labels: Tensor::from_data(TensorData::new(labels, [b]), device),
        jet_ids: batch.jet_ids,
        label_values: batch.labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            size: 2,
            res: 3,
            features: 2,
            points: (0..12).map(|x| x as f32).collect(),
            mask: vec![1, 1, 0, 1, 0, 0],
            labels: vec![1, 0],
            jet_ids: vec![7, 9],
            n_points: vec![2, 1],
            k: 1,
            neighbours: vec![1, 0, 2, 1, 1, 2],
            knn_k: vec![1, 0],
            ..Default::default()
        }
    }

    #[test]
    fn tensors_hold_the_batch_values_in_their_shapes() {
        let all = Needs {
            points: true,
            mask: true,
            neighbours: true,
            all_jet_inputs_by_default: false,
            image: false,
        };
        let t = to_tensors(batch(), all, &Device::flex());
        let x = &t.inputs;
        assert_eq!(x.points().dims(), [2, 3, 2]);
        let p: Vec<f32> = x.points().try_into_vec_as::<f32>().unwrap();
        assert_eq!(p, (0..12).map(|x| x as f32).collect::<Vec<_>>());
        let m: Vec<f32> = x.mask().try_into_vec_as::<f32>().unwrap();
        assert_eq!(m, [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let nm = x.neighbour_mask.clone().unwrap();
        let nm: Vec<f32> = nm.try_into_vec_as::<f32>().unwrap();
        assert_eq!(nm, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let nb: Vec<i64> = x
            .neighbours
            .clone()
            .unwrap()
            .try_into_vec_as::<i64>()
            .unwrap();
        assert_eq!(nb, [1, 0, 2, 1, 1, 2]);
        let l: Vec<i64> = t.labels.try_into_vec_as::<i64>().unwrap();
        assert_eq!(l, [1, 0]);
    }

    #[test]
    fn what_the_model_does_not_need_is_not_uploaded() {
        let points_only = Needs {
            points: true,
            mask: false,
            neighbours: false,
            all_jet_inputs_by_default: false,
            image: false,
        };
        let t = to_tensors(batch(), points_only, &Device::flex());
        assert!(t.inputs.points.is_some());
        assert!(t.inputs.mask.is_none());
        assert!(t.inputs.neighbours.is_none() && t.inputs.neighbour_mask.is_none());
        assert_eq!(t.jet_ids, [7, 9]);
    }
}
