//! Classifier metrics from scores and labels: exact ROC AUC (Mann–Whitney U with tied scores
//! sharing their average rank), the ROC curve, accuracy at a threshold, and mean binary
//! cross-entropy on logits.
//!
//! Only labelled jets count: label 1 is positive, 0 negative, and any other value (−1 for a
//! jet without a label) is left out, as `pipeline compare` leaves out jets whose label is null.

/// Indices of the labelled jets (label 0 or 1).
fn labelled(labels: &[i8]) -> Vec<usize> {
    (0..labels.len())
        .filter(|&i| labels[i] == 0 || labels[i] == 1)
        .collect()
}

/// Exact area under the ROC curve of `scores` for positives `labels == 1` and negatives
/// `labels == 0`. `None` when one class is missing.
pub fn auc(scores: &[f32], labels: &[i8]) -> Option<f64> {
    let mut idx = labelled(labels);
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]].total_cmp(&scores[idx[i]]).is_eq() {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j
        for &t in &idx[i..j] {
            if labels[t] == 1 {
                rank_sum += avg;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = idx.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// ROC curve: (false-positive rate, true-positive rate) at every distinct threshold, from
/// (0, 0) to (1, 1).
pub fn roc(scores: &[f32], labels: &[i8]) -> Vec<(f64, f64)> {
    let mut idx = labelled(labels);
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let count = |c: i8| idx.iter().filter(|&&i| labels[i] == c).count().max(1) as f64;
    let (pos, neg) = (count(1), count(0));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]].total_cmp(&s).is_eq() {
            if labels[idx[i]] == 1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        out.push((fp / neg, tp / pos));
    }
    out
}

/// Fraction of the labelled jets with `(score > threshold) == (label == 1)`.
pub fn accuracy(scores: &[f32], labels: &[i8], threshold: f32) -> f64 {
    let idx = labelled(labels);
    let right = idx
        .iter()
        .filter(|&&i| (scores[i] > threshold) == (labels[i] == 1))
        .count();
    right as f64 / idx.len().max(1) as f64
}

/// Mean binary cross-entropy of logits (numerically stable form).
pub fn bce_with_logits(logits: &[f32], labels: &[i8]) -> f64 {
    let sum: f64 = logits
        .iter()
        .zip(labels)
        .map(|(&z, &l)| {
            let (z, y) = (f64::from(z), f64::from(l == 1));
            z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
        })
        .sum();
    sum / logits.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// O(n²) reference: P(score_pos > score_neg) + ½ P(equal).
    fn brute_auc(s: &[f32], l: &[i8]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..s.len() {
            for j in 0..s.len() {
                if l[i] == 1 && l[j] != 1 {
                    den += 1.0;
                    num += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        num / den
    }

    #[test]
    fn auc_equals_brute_force_with_ties_and_roc_area_agrees() {
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [2usize, 5, 40, 300] {
            let s: Vec<f32> = (0..n).map(|_| (next() % 7) as f32 / 7.0).collect();
            let mut l: Vec<i8> = (0..n).map(|_| (next() % 2) as i8).collect();
            l[0] = 1;
            l[1] = 0;
            let a = auc(&s, &l).unwrap();
            assert!((a - brute_auc(&s, &l)).abs() < 1e-12, "n={n}");
            let r = roc(&s, &l);
            let area: f64 = r
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
                .sum();
            assert!((area - a).abs() < 1e-9, "trapezoid {area} vs {a}");
        }
        assert_eq!(auc(&[0.1, 0.2], &[1, 1]), None);
        // NaN scores (a diverged model) rank above everything instead of hanging the loops.
        assert_eq!(auc(&[f32::NAN, f32::NAN, 0.1], &[1, 0, 0]), Some(0.75));
        assert_eq!(roc(&[f32::NAN, 0.1], &[1, 0]).len(), 3);
        assert_eq!(auc(&[0.1, 0.9], &[0, 1]), Some(1.0));
    }

    #[test]
    fn unlabelled_jets_change_no_metric() {
        // The same jets with unlabelled ones (−1) interleaved, scored anywhere.
        let s = [0.9, 0.2, 0.7, 0.4, 0.6, 0.1];
        let l = [1, 0, 1, 0, 0, 1];
        let (mut s2, mut l2) = (Vec::new(), Vec::new());
        for i in 0..s.len() {
            s2.extend([s[i], 0.95 - 0.1 * i as f32]);
            l2.extend([l[i], -1]);
        }
        assert_eq!(auc(&s2, &l2), auc(&s, &l));
        assert_eq!(auc(&s, &l), Some(6.0 / 9.0));
        assert_eq!(roc(&s2, &l2), roc(&s, &l));
        assert_eq!(accuracy(&s2, &l2, 0.5), accuracy(&s, &l, 0.5));
        assert_eq!(accuracy(&s, &l, 0.5), 4.0 / 6.0);
        assert_eq!(auc(&[0.3, 0.8], &[-1, -1]), None);
    }

    #[test]
    fn accuracy_and_bce_have_known_values() {
        assert_eq!(accuracy(&[0.9, 0.1, 0.6, 0.4], &[1, 0, 0, 0], 0.5), 0.75);
        let b = bce_with_logits(&[0.0, 2.0], &[1, 0]);
        let want = (2f64.ln() + (1.0 + 2f64.exp()).ln()) / 2.0;
        assert!((b - want).abs() < 1e-12);
    }
}
