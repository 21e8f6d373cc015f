//! Per-feature preprocessing, like weaver's `inputs`: `log1p`, `scale`, `clip`, `zero`,
//! `jet_fraction` and `standardise`, applied in the order given. Standardisation uses the median and the 16th/84th
//! percentiles of the feature (after the transforms before it) over real points, computed once
//! over a deterministic fraction of the selected jets and cached in the dataset's manifest
//! (`stats`), so later runs and other ranks read them instead of recomputing.

use crate::error::Result;
use crate::loader::dataset::PointsDataset;
use crate::loader::decode::Wanted;
use crate::loader::plan::split_unit;
use crate::store::manifest::FeatureStats;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One transform of a feature, as written in the YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// x → ln(1 + x) (energies; values below −1 give NaN, so only for non-negative inputs).
    Log1p,
    /// x → x · factor.
    Scale(f32),
    /// x → min(max(x, lo), hi).
    Clip([f32; 2]),
    /// x → v where x is exactly 0, other values unchanged. For images: empty pixels get a
    /// value of their own, below every hit (`{zero: -1}` after `log1p`), so a generative
    /// model's noise around "empty" does not read as small hits.
    Zero(f32),
    /// x → x / Σ x over the jet's stored points (at the loaded resolution, after the
    /// transforms before it), like ParticleNet's E/E_jet inputs: a max-pooling network cannot
    /// sum, so jet-normalised shapes (leading fraction, pT_D) need this. A jet whose sum is 0
    /// gives 0.
    JetFraction,
    /// x → (x − median) / ((p84 − p16) / 2); the statistics come from the dataset (cached).
    #[serde(alias = "standardize")]
    Standardise,
}

/// A resolved transform (standardisation turned into an affine map with numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// ln(1 + x).
    Log1p,
    /// (x − sub) · mul.
    Affine { sub: f32, mul: f32 },
    /// Clamp to [lo, hi].
    Clip { lo: f32, hi: f32 },
    /// 0 → the value, anything else unchanged.
    Zero(f32),
    /// Divide by the jet's sum: needs the whole jet, so only [`apply_jet`] applies it.
    JetFraction,
}

impl Op {
    /// Applies a per-value transform ([`Op::JetFraction`] is per jet: see [`apply_jet`]).
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Op::Log1p => x.ln_1p(),
            Op::Affine { sub, mul } => (x - sub) * mul,
            Op::Clip { lo, hi } => x.clamp(lo, hi),
            Op::Zero(v) => {
                if x == 0.0 {
                    v
                } else {
                    x
                }
            }
            Op::JetFraction => unreachable!("jet_fraction is applied per jet by apply_jet"),
        }
    }

    /// Whether the op needs the whole jet.
    pub fn per_jet(self) -> bool {
        self == Op::JetFraction
    }

    /// The op of a transform that needs no statistics.
    fn plain(t: &Transform) -> Option<Op> {
        match *t {
            Transform::Log1p => Some(Op::Log1p),
            Transform::Scale(f) => Some(Op::Affine { sub: 0.0, mul: f }),
            Transform::Clip([lo, hi]) => Some(Op::Clip { lo, hi }),
            Transform::Zero(v) => Some(Op::Zero(v)),
            Transform::JetFraction => Some(Op::JetFraction),
            Transform::Standardise => None,
        }
    }
}

/// Applies `ops` in order to one jet's values of a feature, in place: per-value ops point by
/// point, [`Op::JetFraction`] over the whole jet.
pub fn apply_jet(ops: &[Op], values: &mut [f32]) {
    let mut from = 0;
    for (i, op) in ops.iter().enumerate() {
        if op.per_jet() {
            elementwise(&ops[from..i], values);
            let sum: f32 = values.iter().sum();
            let inv = if sum != 0.0 { 1.0 / sum } else { 0.0 };
            values.iter_mut().for_each(|x| *x *= inv);
            from = i + 1;
        }
    }
    elementwise(&ops[from..], values);
}

/// Applies per-value `ops` in order to one value.
#[inline]
pub fn apply_ops(ops: &[Op], x: f32) -> f32 {
    ops.iter().fold(x, |x, op| op.apply(x))
}

fn elementwise(ops: &[Op], values: &mut [f32]) {
    if !ops.is_empty() {
        for x in values {
            *x = apply_ops(ops, *x);
        }
    }
}

/// The standardisation of `stats`: centre at the median, unit half-width of the 16–84 %
/// interval (a spread of 0, e.g. a constant feature, keeps scale 1).
pub fn standardise_op(stats: &FeatureStats) -> Op {
    let half = (stats.p84 - stats.p16) / 2.0;
    Op::Affine {
        sub: stats.median,
        mul: if half > 0.0 { 1.0 / half } else { 1.0 },
    }
}

/// Quantile q of sorted-by-selection `v` with numpy's default (linear) interpolation.
pub fn quantile(v: &mut [f32], q: f64) -> f32 {
    assert!(!v.is_empty());
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let n = v.len();
    let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f32::total_cmp);
    if lo + 1 >= n || pos == lo as f64 {
        return a;
    }
    let b = rest
        .iter()
        .copied()
        .min_by(f32::total_cmp)
        .expect("nonempty");
    (a as f64 + (b as f64 - a as f64) * (pos - lo as f64)) as f32
}

/// Which jets the statistics are computed over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsScope {
    /// Fraction of the selected jets (chosen by jet-id hash, seed 0x57A75).
    pub fraction: f64,
}

/// The cache key of one feature's statistics.
pub fn stats_key(
    res: u32,
    column: &str,
    before: &[Transform],
    scope: StatsScope,
    split: &str,
) -> String {
    let before = serde_json::to_string(before).expect("transforms serialise");
    format!(
        "res={res} column={column} transforms={before} fraction={} jets={split}",
        scope.fraction
    )
}

/// Computes the statistics of `column` after `before` over the real points of the jets that
/// `keep` selects (by jet id) and the scope's fraction of them.
pub fn compute_stats(
    ds: &PointsDataset,
    column: &str,
    before: &[Op],
    scope: StatsScope,
    keep: &dyn Fn(u64) -> bool,
) -> Result<FeatureStats> {
    if !crate::loader::decode::is_derived(column) {
        ds.column(column)?;
    }
    // The loader's own row-group decoding: one column, flat values sliced by `n_points`.
    let want = Wanted {
        features: vec![column.to_string()],
        k: None,
    };
    let mut values = Vec::new();
    let mut jets = 0u64;
    for rg in ds.row_groups() {
        let d = ds.decode(rg, &want)?;
        for (row, &id) in d.jet_ids.iter().enumerate() {
            if !keep(id) || split_unit(id, 0x57A75) >= scope.fraction {
                continue;
            }
            jets += 1;
            let from = values.len();
            values.extend_from_slice(&d.features[0][d.starts[row]..d.starts[row + 1]]);
            apply_jet(before, &mut values[from..]);
        }
    }
    if values.is_empty() {
        return Err(crate::Error::Output {
            path: ds.dir().to_path_buf(),
            msg: format!(
                "no points to compute `{column}` statistics from: raise stats_fraction or check the split"
            ),
        });
    }
    let count = values.len() as u64;
    Ok(FeatureStats {
        median: quantile(&mut values, 0.5),
        p16: quantile(&mut values, 0.16),
        p84: quantile(&mut values, 0.84),
        points: count,
        jets,
    })
}

/// Statistics source of [`resolve`]: (transforms before, their ops) → statistics.
pub type StatsFn<'a> = dyn FnMut(&[Transform], &[Op]) -> Result<FeatureStats> + 'a;

/// The ops of one feature; `stats` is called for a `standardise` step with the transforms
/// before it and returns the statistics (cached or computed).
pub fn resolve(transforms: &[Transform], stats: &mut StatsFn<'_>) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for (i, t) in transforms.iter().enumerate() {
        match Op::plain(t) {
            Some(op) => ops.push(op),
            None => {
                let s = stats(&transforms[..i], &ops)?;
                ops.push(standardise_op(&s));
            }
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear_interpolation() {
        // numpy.percentile([5, 1, 4, 2, 3, 10], [16, 50, 84]) = [1.8, 3.5, 6.0]
        let v = [5.0f32, 1.0, 4.0, 2.0, 3.0, 10.0];
        for (q, want) in [
            (0.16, 1.8f32),
            (0.5, 3.5),
            (0.84, 6.0),
            (0.0, 1.0),
            (1.0, 10.0),
        ] {
            let got = quantile(&mut v.clone(), q);
            assert!((got - want).abs() < 1e-5, "q={q}: {got} != {want}");
        }
        assert_eq!(quantile(&mut [7.0], 0.84), 7.0);
    }

    #[test]
    fn jet_fraction_divides_by_the_jets_sum_after_the_ops_before_it() {
        let t: Vec<Transform> =
            serde_saphyr::from_str("[{scale: 2.0}, jet_fraction, {scale: 10.0}]").unwrap();
        let ops = resolve(&t, &mut |_, _| unreachable!()).unwrap();
        let mut v = [1.0f32, 3.0, 0.0, 4.0];
        apply_jet(&ops, &mut v);
        // 2·x / Σ 2·x = x / 8, then ×10.
        assert_eq!(v, [1.25, 3.75, 0.0, 5.0]);
        let mut zeros = [0.0f32; 3];
        apply_jet(&ops, &mut zeros);
        assert_eq!(zeros, [0.0; 3]);
        let mut none: [f32; 0] = [];
        apply_jet(&ops, &mut none);
    }

    #[test]
    fn transforms_apply_in_order_and_standardise_uses_the_stats_before_it() {
        let t = vec![
            Transform::Log1p,
            Transform::Standardise,
            Transform::Clip([-1.0, 1.0]),
        ];
        let mut seen = Vec::new();
        let ops = resolve(&t, &mut |before, ops| {
            seen.push((before.to_vec(), ops.to_vec()));
            Ok(FeatureStats {
                median: 1.0,
                p16: 0.5,
                p84: 2.5,
                points: 10,
                jets: 1,
            })
        })
        .unwrap();
        assert_eq!(seen, [(vec![Transform::Log1p], vec![Op::Log1p])]);
        let x = 3.0f32;
        let want = ((x.ln_1p() - 1.0) / 1.0).clamp(-1.0, 1.0);
        assert_eq!(ops.iter().fold(x, |x, op| op.apply(x)), want);
        assert_eq!(ops[1], Op::Affine { sub: 1.0, mul: 1.0 });
    }
}
