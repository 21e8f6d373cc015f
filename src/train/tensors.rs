//! The loader's Burn adapter: a [`Batch`] of plain buffers becomes tensors on a device. The
//! batch is consumed so its buffers move into the tensor data without a copy on the host
//! (the device upload is the only copy).

use crate::loader::Batch;
use burn::prelude::*;

/// A batch as tensors.
#[derive(Debug, Clone)]
pub struct BatchTensors {
    /// `[B, R, F]` features, zero-padded.
    pub points: Tensor<3>,
    /// `[B, R]` 1.0 for real points, 0.0 for padding.
    pub mask: Tensor<2>,
    /// `[B]` labels as stored (−1 where absent).
    pub labels: Tensor<1, Int>,
    /// `[B, R, k]` neighbour indices (padding = the point's own index), when loaded.
    pub neighbours: Option<Tensor<3, Int>>,
    /// `[B, R, k]` 1.0 for real neighbours, when loaded.
    pub neighbour_mask: Option<Tensor<3>>,
    /// Jet ids (host side, to join predictions with the `jets` table).
    pub jet_ids: Vec<u64>,
    /// Labels (host side).
    pub label_values: Vec<i8>,
}

/// Moves `batch` onto `device`.
pub fn to_tensors(batch: Batch, device: &Device) -> BatchTensors {
    let (b, r, f, k) = (batch.size, batch.res, batch.features, batch.k);
    let nmask = (k > 0).then(|| batch.neighbour_mask());
    let mask: Vec<f32> = batch.mask.iter().map(|&m| f32::from(m)).collect();
    let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
    BatchTensors {
        points: Tensor::from_data(TensorData::new(batch.points, [b, r, f]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, r]), device),
        labels: Tensor::from_data(TensorData::new(labels, [b]), device),
        neighbours: (k > 0).then(|| {
            let v: Vec<i64> = batch.neighbours.iter().map(|&x| i64::from(x)).collect();
            Tensor::from_data(TensorData::new(v, [b, r, k]), device)
        }),
        neighbour_mask: nmask.map(|m| {
            let v: Vec<f32> = m.iter().map(|&x| f32::from(x)).collect();
            Tensor::from_data(TensorData::new(v, [b, r, k]), device)
        }),
        jet_ids: batch.jet_ids,
        label_values: batch.labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_hold_the_batch_values_in_their_shapes() {
        let batch = Batch {
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
        };
        let t = to_tensors(batch, &Device::flex());
        assert_eq!(t.points.dims(), [2, 3, 2]);
        let p: Vec<f32> = t.points.try_into_vec_as::<f32>().unwrap();
        assert_eq!(p, (0..12).map(|x| x as f32).collect::<Vec<_>>());
        let m: Vec<f32> = t.mask.try_into_vec_as::<f32>().unwrap();
        assert_eq!(m, [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let nm: Vec<f32> = t.neighbour_mask.unwrap().try_into_vec_as::<f32>().unwrap();
        assert_eq!(nm, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let nb: Vec<i64> = t.neighbours.unwrap().try_into_vec_as::<i64>().unwrap();
        assert_eq!(nb, [1, 0, 2, 1, 1, 2]);
        let l: Vec<i64> = t.labels.try_into_vec_as::<i64>().unwrap();
        assert_eq!(l, [1, 0]);
    }
}
