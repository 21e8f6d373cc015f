//! Message passing on fixed-k neighbour lists, dense and batched: a [`Graph`] holds a batch's
//! `[B, R, k]` neighbour indices with their mask and the `[B, R]` point mask, gathers neighbour
//! features (`[B, R, k, F]`) and reduces them over k so that padding entries (a jet whose
//! `knn_k < k`) and padding points contribute nothing. Also: masked global pooling and the
//! dynamic kNN of ParticleNet (neighbours in feature space, recomputed per layer).
//!
//! The graph is directed as stored: point i receives messages from its k nearest neighbours
//! (PyTorch Geometric's `source_to_target` flow with edges `j → i` for every listed j).

use crate::train::contract::Inputs;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// A batch of fixed-k neighbour lists.
#[derive(Debug, Clone)]
pub struct Graph {
    /// `[B·R·k]` row of each neighbour in the flattened `[B·R, F]` features; padding entries
    /// hold `B·R`, the zero row that [`Graph::gather`] appends.
    flat: Tensor<1, Int>,
    /// `[B, R, k]` 1.0 for a real neighbour of a real point, else 0.0.
    pub neighbour_mask: Tensor<3>,
    /// `[B, R]` 1.0 for real points.
    pub mask: Tensor<2>,
    /// `[B, R, k]` neighbour indices within the jet.
    pub neighbours: Tensor<3, Int>,
    /// `[B, R, R]` adjacency (row i: 1 at each real neighbour of point i), when built by
    /// [`Graph::with_adjacency`]: sums over neighbours become one batched matrix product.
    adjacency: Option<Tensor<3>>,
}

impl Graph {
    /// The graph of neighbour indices `[B, R, k]` (within each jet), their mask `[B, R, k]` and
    /// the point mask `[B, R]`. Padding entries may hold any index in `0..R`.
    pub fn new(neighbours: Tensor<3, Int>, neighbour_mask: Tensor<3>, mask: Tensor<2>) -> Self {
        let [b, r, k] = neighbours.dims();
        let device = neighbours.device();
        // A real neighbour of a padding point does not exist either, and a point listing itself
        // (a graph converted with `knn.include_self`) is not its own neighbour here: the
        // layers add the self term themselves, as PyG's self-loops and ParticleNet's kNN.
        let own = Tensor::<1, Int>::arange(0..r as i64, &device)
            .reshape([1, r, 1])
            .expand([b, r, k]);
        let not_self = neighbours.clone().not_equal(own).float();
        let neighbour_mask = neighbour_mask * not_self * mask.clone().reshape([b, r, 1]);
        let offsets = Tensor::<1, Int>::arange(0..b as i64, &device)
            .mul_scalar(r as i64)
            .reshape([b, 1, 1]);
        // Padding entries read row B·R, a zero row appended by `gather`.
        let flat = (neighbours.clone() + offsets)
            .mask_fill(neighbour_mask.clone().lower_elem(0.5), (b * r) as i64)
            .reshape([b * r * k]);
        Self {
            flat,
            neighbour_mask,
            mask,
            neighbours,
            adjacency: None,
        }
    }

    /// The graph with its dense `[B, R, R]` adjacency, which [`Graph::gather_sum`] and
    /// [`Graph::gather_mean`] then use: a batched product of `O(R²F)` instead of a gather of
    /// `O(RkF)` that materialises `[B, R, k, F]` (faster on the CPU where R is small enough;
    /// `benches/train_step.rs` measures both).
    pub fn with_adjacency(mut self) -> Self {
        let [b, r, _] = self.dims();
        let device = self.mask.device();
        let a = Tensor::<3>::zeros([b, r, r], &device).scatter(
            2,
            self.neighbours.clone(),
            self.neighbour_mask.clone().detach(),
            IndexingUpdateOp::Add,
        );
        self.adjacency = Some(a);
        self
    }

    /// The stored kNN graph of a batch (the model declared `Needs::neighbours` and
    /// `Needs::mask`).
    pub fn of(x: &Inputs) -> Self {
        let nb = x
            .neighbours
            .clone()
            .expect("model contract: `Needs::neighbours` is set for a model that reads the graph");
        let nm = x
            .neighbour_mask
            .clone()
            .expect("model contract: the neighbour mask comes with the neighbours");
        Self::new(nb, nm, x.mask())
    }

    /// The graph of each list's first `k` entries (the store orders a list by distance, so
    /// these are the k nearest); the graph itself where it has at most `k` per point.
    pub fn nearest(&self, k: usize) -> Graph {
        let [_, _, stored] = self.dims();
        if k >= stored {
            return self.clone();
        }
        Graph::new(
            self.neighbours.clone().narrow(2, 0, k),
            self.neighbour_mask.clone().narrow(2, 0, k),
            self.mask.clone(),
        )
    }

    /// `(B, R, k)`.
    pub fn dims(&self) -> [usize; 3] {
        self.neighbours.dims()
    }

    /// Neighbour features `[B, R, k, F]` of point features `[B, R, F]`; padding entries are
    /// zeros.
    pub fn gather(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, r, k] = self.dims();
        let f = x.dims()[2];
        let zero = Tensor::<2>::zeros([1, f], &x.device());
        Tensor::cat(vec![x.reshape([b * r, f]), zero], 0)
            .select(0, self.flat.clone())
            .reshape([b, r, k, f])
    }

    /// Sum of the real neighbours' features `[B, R, F]` (the gathered padding entries are
    /// zeros, so no mask is applied).
    pub fn gather_sum(&self, x: Tensor<3>) -> Tensor<3> {
        if let Some(a) = &self.adjacency {
            return a.clone().matmul(x);
        }
        let [b, r, _] = self.dims();
        let f = x.dims()[2];
        self.gather(x).sum_dim(2).reshape([b, r, f])
    }

    /// Mean of the real neighbours' features `[B, R, F]` (0 for a point without neighbours).
    pub fn gather_mean(&self, x: Tensor<3>) -> Tensor<3> {
        self.gather_sum(x) / self.degree().clamp_min(1.0)
    }

    /// `[B, R, k, 1]` neighbour mask, to broadcast over features.
    fn mask4(&self) -> Tensor<4> {
        let [b, r, k] = self.dims();
        self.neighbour_mask.clone().reshape([b, r, k, 1])
    }

    /// Real neighbours per point `[B, R, 1]`.
    pub fn degree(&self) -> Tensor<3> {
        self.neighbour_mask.clone().sum_dim(2)
    }

    /// Sum over real neighbours of `[B, R, k, F]`: `[B, R, F]`.
    pub fn sum(&self, m: Tensor<4>) -> Tensor<3> {
        let [b, r, _] = self.dims();
        let f = m.dims()[3];
        (m * self.mask4()).sum_dim(2).reshape([b, r, f])
    }

    /// Mean over real neighbours of `[B, R, k, F]` (0 for a point without neighbours, as
    /// PyTorch Geometric's mean aggregation of no messages): `[B, R, F]`.
    pub fn mean(&self, m: Tensor<4>) -> Tensor<3> {
        self.sum(m) / self.degree().clamp_min(1.0)
    }

    /// Zeroes the padding points of `[B, R, F]`.
    pub fn keep_points(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, r, _] = self.dims();
        x * self.mask.clone().reshape([b, r, 1])
    }
}

/// Mean of `[B, R, F]` over each jet's real points (`mask` `[B, R]`): `[B, F]`.
pub fn mean_pool(x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, r, f] = x.dims();
    let m = mask.reshape([b, r, 1]);
    let n = m.clone().sum_dim(1).clamp_min(1.0);
    ((x * m).sum_dim(1) / n).reshape([b, f])
}

/// Maximum of `[B, R, F]` over each jet's real points: `[B, F]` (0 for a jet without points).
pub fn max_pool(x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, r, f] = x.dims();
    let pad = mask
        .clone()
        .reshape([b, r, 1])
        .lower_elem(0.5)
        .expand([b, r, f]);
    let any = mask.sum_dim(1).greater_elem(0.5).float();
    let max = x.mask_fill(pad, f32::MIN).max_dim(1).reshape([b, f]);
    max * any
}

/// The `k` nearest other real points of every real point of its jet by Euclidean distance
/// between feature vectors `[B, R, F]` (ParticleNet's dynamic graph): a point of a jet with
/// `n` points gets `min(k, n − 1)` real neighbours, nearest first. The search does not take
/// part in the backward pass (indices have no gradient; the features gathered with them do).
/// Needs `k < R`.
pub fn knn_in_features(x: Tensor<3>, mask: Tensor<2>, k: usize) -> Graph {
    let [b, r, _] = x.dims();
    let device = x.device();
    let x = x.detach();
    let sq = x.clone().powi_scalar(2).sum_dim(2); // [B, R, 1]
    let dot = x.clone().matmul(x.swap_dims(1, 2)); // [B, R, R]
    let d = sq.clone() + sq.swap_dims(1, 2) - dot * 2.0;
    // Padding points and the point itself are never neighbours: they sort after every finite
    // distance, the point itself last (they are chosen only when a jet has fewer than k + 1
    // points, and masked).
    let pad = mask
        .clone()
        .reshape([b, 1, r])
        .lower_elem(0.5)
        .expand([b, r, r]);
    let eye = Tensor::<2>::eye(r, &device)
        .bool()
        .unsqueeze_dim::<3>(0)
        .expand([b, r, r]);
    let d = d.mask_fill(pad, f32::MAX).mask_fill(eye, f32::INFINITY);
    let (_, idx) = d.neg().topk_with_indices(k, 2);
    // The first n − 1 of a point's list are its jet's other real points.
    let others = mask.clone().sum_dim(1) - 1.0; // [B, 1]
    let rank = Tensor::<1, Int>::arange(0..k as i64, &device)
        .float()
        .reshape([1, 1, k]);
    let nm = rank
        .expand([b, r, k])
        .lower(others.reshape([b, 1, 1]).expand([b, r, k]))
        .float();
    Graph::new(idx, nm, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn vec3(t: Tensor<3>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    /// Two jets, R = 4, k = 2: jet 0 has 3 points (point 2's second entry is padding), jet 1
    /// has 1 point (no neighbours).
    fn graph(device: &Device) -> Graph {
        let idx = Tensor::<3, Int>::from_data(
            TensorData::new(
                vec![1i64, 2, 0, 2, 0, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3],
                [2, 4, 2],
            ),
            device,
        );
        let nm = Tensor::<3>::from_data(
            TensorData::new(
                vec![
                    1f32, 1., 1., 1., 1., 0., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1.,
                ],
                [2, 4, 2],
            ),
            device,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(vec![1f32, 1., 1., 0., 1., 0., 0., 0.], [2, 4]),
            device,
        );
        Graph::new(idx, nm, mask)
    }

    #[test]
    fn reductions_skip_padding_entries_and_padding_points() {
        let device = Device::flex();
        let g = graph(&device);
        let x = Tensor::<3>::from_data(
            TensorData::new((0..8).map(|v| 10f32.powi(v)).collect(), [2, 4, 1]),
            &device,
        );
        let s = vec3(g.sum(g.gather(x.clone())));
        assert_eq!(vec3(g.gather_sum(x.clone())), s);
        let dense = g.clone().with_adjacency();
        assert_eq!(vec3(dense.gather_sum(x.clone())), s);
        // Jet 0: point 0 ← 1, 2; point 1 ← 0, 2; point 2 ← 0 only; point 3 is padding.
        // Jet 1: point 0 has no neighbours; the rest is padding whatever the lists say.
        assert_eq!(s, [110.0, 101.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let m = vec3(g.mean(g.gather(x.clone())));
        assert_eq!(vec3(g.gather_mean(x)), m);
        assert_eq!(m, [55.0, 50.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(vec3(g.degree()), [2.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn nearest_keeps_the_first_entries_of_each_list() {
        let device = Device::flex();
        let g = graph(&device);
        let x = Tensor::<3>::from_data(
            TensorData::new(
                (0..8).map(|v| 10f32.powi(v % 4)).collect::<Vec<_>>(),
                [2, 4, 1],
            ),
            &device,
        );
        // Only each list's first entry: jet 0's points 0, 1, 2 read points 1, 0, 0 (x = 10, 1,
        // 1); jet 1's one point has no real neighbour, its padding points none either.
        let one = g.nearest(1);
        assert_eq!(one.dims(), [2, 4, 1]);
        assert_eq!(
            vec3(one.gather_sum(x.clone())),
            [10., 1., 1., 0., 0., 0., 0., 0.]
        );
        assert_eq!(
            vec3(g.nearest(2).gather_sum(x.clone())),
            vec3(g.gather_sum(x.clone()))
        );
        assert_eq!(
            vec3(g.nearest(5).gather_sum(x.clone())),
            vec3(g.gather_sum(x))
        );
    }

    #[test]
    fn a_point_listing_itself_is_not_its_own_neighbour() {
        let device = Device::flex();
        // One jet of 3 points (a graph converted with `include_self`): point p lists p first.
        let idx = Tensor::<3, Int>::from_data(
            TensorData::new(vec![0i64, 1, 1, 0, 2, 0], [1, 3, 2]),
            &device,
        );
        let nm = Tensor::<3>::ones([1, 3, 2], &device);
        let g = Graph::new(idx, nm, Tensor::<2>::ones([1, 3], &device));
        let x = Tensor::<3>::from_data(TensorData::new(vec![1f32, 10., 100.], [1, 3, 1]), &device);
        assert_eq!(vec3(g.gather_sum(x.clone())), [10.0, 1.0, 1.0]);
        assert_eq!(
            vec3(g.clone().with_adjacency().gather_sum(x)),
            [10.0, 1.0, 1.0]
        );
        assert_eq!(vec3(g.degree()), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn pools_read_real_points_only() {
        let device = Device::flex();
        let g = graph(&device);
        let x = Tensor::<3>::from_data(
            TensorData::new(vec![-1f32, -2., -3., 9., -5., 9., 9., 9.], [2, 4, 1]),
            &device,
        );
        let mean: Vec<f32> = mean_pool(x.clone(), g.mask.clone())
            .try_into_vec_as()
            .unwrap();
        assert_eq!(mean, [-2.0, -5.0]);
        let max: Vec<f32> = max_pool(x, g.mask).try_into_vec_as().unwrap();
        assert_eq!(max, [-1.0, -5.0]);
    }

    #[test]
    fn feature_knn_matches_brute_force() {
        let device = Device::flex();
        let (b, r, f, k) = (3, 12, 4, 3);
        let x = Tensor::<3>::random([b, r, f], Distribution::Normal(0.0, 1.0), &device);
        let n = [12usize, 7, 3];
        let mv: Vec<f32> = (0..b * r)
            .map(|i| f32::from(u8::from(i % r < n[i / r])))
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mv, [b, r]), &device);
        let g = knn_in_features(x.clone(), mask, k);
        let xs = vec3(x);
        let idx: Vec<i64> = g.neighbours.clone().try_into_vec_as().unwrap();
        let nm = vec3(g.neighbour_mask.clone());
        for jet in 0..b {
            for i in 0..r {
                let at = |p: usize| &xs[(jet * r + p) * f..][..f];
                let d = |p: usize| -> f32 {
                    at(p).iter().zip(at(i)).map(|(a, c)| (a - c).powi(2)).sum()
                };
                let mut want: Vec<usize> = (0..n[jet]).filter(|&p| p != i).collect();
                want.sort_by(|&p, &q| d(p).total_cmp(&d(q)));
                want.truncate(k);
                let real = if i < n[jet] { want.len() } else { 0 };
                let row = (jet * r + i) * k;
                let got: Vec<usize> = (0..real).map(|s| idx[row + s] as usize).collect();
                assert_eq!(got, want[..real], "jet {jet} point {i}");
                for s in 0..k {
                    assert_eq!(
                        nm[row + s],
                        f32::from(u8::from(s < real)),
                        "jet {jet} point {i}"
                    );
                }
            }
        }
    }
}
