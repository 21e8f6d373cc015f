//! Denoising diffusion (Ho et al. 2020, "DDPM"; Song et al. 2021, "DDIM") independent of the
//! network: the noise schedule, the forward process q(x_t | x_0), ancestral and DDIM sampling,
//! SDEdit-style reconstruction (noise a real image to step t₀, denoise it back) and the
//! deterministic DDIM inversion round trip. The network predicts the noise ε (Ho et al.) or
//! the velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022), as the schedule's
//! [`Prediction`] says. The samplers take the network as a function of (x_t, t) so they are
//! tested with analytic predictors (a point mass and a Gaussian, whose optimal ε and v are
//! known in closed form).

use crate::train::contract::Noise;
use burn::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How β_t grows over the T steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// β_t linear from 1e-4 to 0.02 (Ho et al., for T = 1000; scaled by 1000/T otherwise).
    Linear,
    /// ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2), s = 0.008, β_t ≤ 0.999
    /// (Nichol & Dhariwal 2021).
    Cosine,
}

/// What the network predicts from x_t.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The noise ε (Ho et al.): x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ, which amplifies an error in ε̂
    /// by 1/√ᾱ (up to ~2·10⁴ at the cosine schedule's last steps).
    #[default]
    Epsilon,
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022): x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v̂ and
    /// ε̂ = √(1−ᾱ)·x_t + √ᾱ·v̂, so no step divides by a small ᾱ; at pure noise (ᾱ → 0) the
    /// network predicts −x̂₀.
    V,
}

/// The noise schedule: β_t, α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s for t = 0 … T−1, and what
/// the network predicts.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// β_t.
    pub beta: Vec<f64>,
    /// ᾱ_t.
    pub alpha_bar: Vec<f64>,
    /// The network's target (ε unless [`Schedule::predicting`] says otherwise).
    pub prediction: Prediction,
}

impl Schedule {
    /// The schedule of `kind` over `t` steps.
    pub fn new(kind: BetaSchedule, t: usize) -> Self {
        let beta: Vec<f64> = match kind {
            BetaSchedule::Linear => {
                let scale = 1000.0 / t as f64;
                let (lo, hi) = (scale * 1e-4, scale * 0.02);
                (0..t)
                    .map(|i| lo + (hi - lo) * i as f64 / (t.max(2) - 1) as f64)
                    .collect()
            }
            BetaSchedule::Cosine => {
                let f = |i: f64| {
                    let s = 0.008;
                    (((i / t as f64 + s) / (1.0 + s)) * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..t)
                    .map(|i| (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(0.999))
                    .collect()
            }
        };
        let mut alpha_bar = Vec::with_capacity(t);
        let mut p = 1.0;
        for b in &beta {
            p *= 1.0 - b;
            alpha_bar.push(p);
        }
        Self {
            beta,
            alpha_bar,
            prediction: Prediction::Epsilon,
        }
    }

    /// The same schedule for a network that predicts `p`.
    pub fn predicting(mut self, p: Prediction) -> Self {
        self.prediction = p;
        self
    }

    /// T.
    pub fn steps(&self) -> usize {
        self.beta.len()
    }

    /// x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for per-image steps `t`.
    pub fn q_sample(&self, x0: Tensor<4>, t: &[usize], eps: Tensor<4>) -> Tensor<4> {
        let d = x0.device();
        let a = self.per_image(t, |ab| ab.sqrt(), &d);
        let s = self.per_image(t, |ab| (1.0 - ab).sqrt(), &d);
        x0 * a + eps * s
    }

    /// The training target of x_t = [`Schedule::q_sample`]`(x0, t, eps)`: ε, or
    /// v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀.
    pub fn target(&self, x0: Tensor<4>, t: &[usize], eps: Tensor<4>) -> Tensor<4> {
        match self.prediction {
            Prediction::Epsilon => eps,
            Prediction::V => {
                let d = x0.device();
                let a = self.per_image(t, |ab| ab.sqrt(), &d);
                let s = self.per_image(t, |ab| (1.0 - ab).sqrt(), &d);
                eps * a - x0 * s
            }
        }
    }

    /// `[B, 1, 1, 1]` of `f(ᾱ_t)` per image.
    fn per_image(&self, t: &[usize], f: impl Fn(f64) -> f64, d: &Device) -> Tensor<4> {
        let v: Vec<f32> = t.iter().map(|&i| f(self.alpha_bar[i]) as f32).collect();
        Tensor::from_data(TensorData::new(v, [t.len(), 1, 1, 1]), d)
    }

    /// ᾱ at step `t`, 1 before the first step (t = −1).
    fn ab(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |i| self.alpha_bar[i])
    }

    /// x̂₀ and ε̂ from `x` at ᾱ `ab` and the network's output `out`, x̂₀ clamped to `clip`
    /// (ε̂ then re-derived from the clamped x̂₀, so the pair stays consistent with x).
    fn denoised(
        &self,
        x: Tensor<4>,
        out: Tensor<4>,
        ab: f64,
        clip: Option<(f32, f32)>,
    ) -> (Tensor<4>, Tensor<4>) {
        let (a, s) = (ab.sqrt(), (1.0 - ab).sqrt());
        let (x0, e) = match self.prediction {
            Prediction::Epsilon => ((x.clone() - out.clone().mul_scalar(s)).div_scalar(a), out),
            Prediction::V => (
                x.clone().mul_scalar(a) - out.clone().mul_scalar(s),
                x.clone().mul_scalar(s) + out.mul_scalar(a),
            ),
        };
        match clip {
            Some((lo, hi)) => {
                let x0 = x0.clamp(lo, hi);
                let e = (x - x0.clone().mul_scalar(a)).div_scalar(s);
                (x0, e)
            }
            None => (x0, e),
        }
    }

    /// Ancestral sampling (Ho et al. Algorithm 2, σ_t² = β̃_t the posterior variance) from
    /// `x` at step `from` (T−1: pure noise) down to x_0. The mean is the posterior mean
    /// μ̃ = √ᾱ_{t−1}·β_t/(1−ᾱ_t)·x̂₀ + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t of the predicted x̂₀, which
    /// is Algorithm 2's mean unless `clip` clamps x̂₀ to the data range (as Nichol &
    /// Dhariwal's code does: with ε-prediction an error in ε̂ reaches x̂₀ multiplied by
    /// √((1−ᾱ)/ᾱ), ~2·10⁴ at the cosine schedule's last step, where ᾱ = 2.4e-9).
    pub fn ancestral(
        &self,
        mut x: Tensor<4>,
        from: usize,
        net: &mut dyn FnMut(Tensor<4>, usize) -> Tensor<4>,
        noise: &mut Noise,
        clip: Option<(f32, f32)>,
    ) -> Tensor<4> {
        let shape = x.dims();
        let d = x.device();
        for t in (0..=from).rev() {
            let out = net(x.clone(), t);
            let (beta, ab) = (self.beta[t], self.alpha_bar[t]);
            let ab_prev = self.ab(t.checked_sub(1));
            let (x0, _) = self.denoised(x.clone(), out, ab, clip);
            let mean = x0.mul_scalar(ab_prev.sqrt() * beta / (1.0 - ab))
                + x.mul_scalar((1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab));
            x = if t > 0 {
                let var = beta * (1.0 - ab_prev) / (1.0 - ab);
                mean + noise.normal(shape, &d).mul_scalar(var.sqrt())
            } else {
                mean
            };
        }
        x
    }

    /// `n` DDIM steps from step `from` evenly spaced down to the first:
    /// tᵢ = round((from + 1)(1 − i/n)) − 1 (all `from + 1` steps when n = from + 1).
    fn ddim_steps(from: usize, n: usize) -> Vec<usize> {
        let n = n.clamp(1, from + 1);
        let mut ts: Vec<usize> = (0..n)
            .map(|i| ((from + 1) as f64 * (1.0 - i as f64 / n as f64)).round() as usize - 1)
            .collect();
        ts.dedup();
        ts
    }

    /// One deterministic DDIM move (η = 0) of `x` at ᾱ `ab` with the network's output `out` to
    /// ᾱ `ab_to`: √ᾱ_to·x̂₀ + √(1−ᾱ_to)·ε̂ ([`Schedule::denoised`]).
    fn ddim_move(
        &self,
        x: Tensor<4>,
        out: Tensor<4>,
        ab: f64,
        ab_to: f64,
        clip: Option<(f32, f32)>,
    ) -> Tensor<4> {
        let (x0, e) = self.denoised(x, out, ab, clip);
        Self::noised_to(x0, e, ab_to)
    }

    /// √ᾱ_to·x̂₀ + √(1−ᾱ_to)·ε̂: the point at ᾱ `ab_to` of the deterministic path through x̂₀.
    fn noised_to(x0: Tensor<4>, e: Tensor<4>, ab_to: f64) -> Tensor<4> {
        x0.mul_scalar(ab_to.sqrt()) + e.mul_scalar((1.0 - ab_to).sqrt())
    }

    /// Deterministic DDIM sampling (η = 0) in `n` steps from `x` at step `from` to x_0, x̂₀
    /// clamped to `clip` at every step.
    pub fn ddim(
        &self,
        mut x: Tensor<4>,
        from: usize,
        n: usize,
        net: &mut dyn FnMut(Tensor<4>, usize) -> Tensor<4>,
        clip: Option<(f32, f32)>,
    ) -> Tensor<4> {
        let ts = Self::ddim_steps(from, n);
        for (i, &t) in ts.iter().enumerate() {
            let next = ts.get(i + 1).copied();
            let out = net(x.clone(), t);
            x = self.ddim_move(x, out, self.alpha_bar[t], self.ab(next), clip);
        }
        x
    }

    /// DDIM inversion: x_0 run deterministically up to step `to` in `n` steps (the reverse of
    /// [`Schedule::ddim`] with the same steps, exact in the limit of many steps).
    pub fn ddim_invert(
        &self,
        mut x: Tensor<4>,
        to: usize,
        n: usize,
        net: &mut dyn FnMut(Tensor<4>, usize) -> Tensor<4>,
    ) -> Tensor<4> {
        let mut ts = Self::ddim_steps(to, n);
        ts.reverse();
        let mut prev: Option<usize> = None;
        for &t in &ts {
            // The network is evaluated at the current point (step `prev`), as the sampler
            // evaluates it at its current step.
            let out = net(x.clone(), prev.unwrap_or(0));
            x = match prev {
                Some(p) => self.ddim_move(x, out, self.alpha_bar[p], self.alpha_bar[t], None),
                // The first move starts from x₀ itself (x̂₀ = x), with ε̂ read at step 0, where
                // the network was evaluated (for v it depends on ᾱ₀; for ε it is the output).
                None => {
                    let (_, e) = self.denoised(x.clone(), out, self.alpha_bar[0], None);
                    Self::noised_to(x, e, self.alpha_bar[t])
                }
            };
            prev = Some(t);
        }
        x
    }
}

/// `[B, dim]` sinusoidal embeddings of steps `t` (Vaswani et al.; as DDPM's UNet).
pub fn timestep_embedding(t: &[usize], dim: usize, d: &Device) -> Tensor<2> {
    let half = dim / 2;
    let mut v = vec![0f32; t.len() * dim];
    for (b, &ti) in t.iter().enumerate() {
        for i in 0..half {
            let f = (-(10_000f64.ln()) * i as f64 / half as f64).exp();
            let a = ti as f64 * f;
            v[b * dim + i] = a.sin() as f32;
            v[b * dim + half + i] = a.cos() as f32;
        }
    }
    Tensor::from_data(TensorData::new(v, [t.len(), dim]), d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(t: Tensor<4>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let s = Schedule::new(BetaSchedule::Linear, 1000);
        assert!((s.beta[0] - 1e-4).abs() < 1e-12 && (s.beta[999] - 0.02).abs() < 1e-12);
        let want: f64 = (0..=499).map(|i| 1.0 - s.beta[i]).product();
        assert!((s.alpha_bar[499] - want).abs() < 1e-12);
        // Ho et al.: ᾱ_T ≈ 4e-5 for the linear schedule at T = 1000.
        assert!(
            (s.alpha_bar[999] - 4.04e-5).abs() < 1e-6,
            "{}",
            s.alpha_bar[999]
        );
        let c = Schedule::new(BetaSchedule::Cosine, 1000);
        let f = |t: f64| {
            (((t / 1000.0 + 0.008) / 1.008) * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for t in [0, 100, 500, 900] {
            let want = f(t as f64 + 1.0) / f(0.0);
            assert!((c.alpha_bar[t] - want).abs() < 1e-9, "t {t}");
        }
        assert!(c.beta.iter().all(|&b| b > 0.0 && b <= 0.999));
    }

    #[test]
    fn q_sample_is_the_closed_form() {
        let d = Device::flex();
        let s = Schedule::new(BetaSchedule::Cosine, 100);
        let x0 = Tensor::<4>::ones([2, 1, 2, 2], &d).mul_scalar(3.0);
        let eps = Tensor::<4>::ones([2, 1, 2, 2], &d).mul_scalar(-1.0);
        let v = vals(s.q_sample(x0, &[10, 90], eps));
        for (b, t) in [(0, 10), (1, 90)] {
            let ab = s.alpha_bar[t];
            let want = 3.0 * ab.sqrt() - (1.0 - ab).sqrt();
            assert!((v[b * 4] as f64 - want).abs() < 1e-5);
        }
    }

    /// The optimal output for data that is always the image `c`: ε = (x_t − √ᾱ_t·c)/√(1−ᾱ_t),
    /// v = √ᾱ_t·ε − √(1−ᾱ_t)·c.
    fn point_mass(s: &Schedule, c: Tensor<4>) -> impl FnMut(Tensor<4>, usize) -> Tensor<4> + '_ {
        move |x, t| {
            let ab = s.alpha_bar[t];
            let e = (x - c.clone().mul_scalar(ab.sqrt())).div_scalar((1.0 - ab).sqrt());
            match s.prediction {
                Prediction::Epsilon => e,
                Prediction::V => e.mul_scalar(ab.sqrt()) - c.clone().mul_scalar((1.0 - ab).sqrt()),
            }
        }
    }

    #[test]
    fn samplers_recover_a_point_mass_exactly() {
        let d = Device::flex();
        for kind in [BetaSchedule::Linear, BetaSchedule::Cosine] {
            for p in [Prediction::Epsilon, Prediction::V] {
                let s = Schedule::new(kind, 200).predicting(p);
                let c = Tensor::<4>::from_floats([[[[0.5, -1.0], [2.0, 0.0]]]], &d);
                let mut noise = Noise::new(1, 1);
                let x = noise.normal([1, 1, 2, 2], &d);
                let a = s.ancestral(
                    x.clone(),
                    199,
                    &mut point_mass(&s, c.clone()),
                    &mut noise,
                    None,
                );
                let b = s.ddim(x, 199, 20, &mut point_mass(&s, c.clone()), None);
                for out in [a, b] {
                    for (g, w) in vals(out).iter().zip([0.5, -1.0, 2.0, 0.0]) {
                        assert!((g - w).abs() < 1e-3, "{kind:?} {p:?}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_v_target_is_the_velocity_and_samplers_read_it_back() {
        let d = Device::flex();
        let s = Schedule::new(BetaSchedule::Cosine, 100).predicting(Prediction::V);
        let x0 = Tensor::<4>::ones([2, 1, 2, 2], &d).mul_scalar(3.0);
        let eps = Tensor::<4>::ones([2, 1, 2, 2], &d).mul_scalar(-1.0);
        let xt = s.q_sample(x0.clone(), &[10, 99], eps.clone());
        let v = s.target(x0, &[10, 99], eps);
        let vv = vals(v.clone());
        for (b, t) in [(0, 10), (1, 99)] {
            let ab = s.alpha_bar[t];
            let want = -ab.sqrt() - 3.0 * (1.0 - ab).sqrt();
            assert!((vv[b * 4] as f64 - want).abs() < 1e-5, "t {t}");
            // The exact v gives back x₀ and ε at each image's own step.
            let (x0, e) = s.denoised(
                xt.clone().narrow(0, b, 1),
                v.clone().narrow(0, b, 1),
                ab,
                None,
            );
            assert!((vals(x0)[0] - 3.0).abs() < 1e-4 && (vals(e)[0] + 1.0).abs() < 1e-4);
        }
        // Clamping x̂₀ re-derives ε̂ so that x_t = √ᾱ·x̂₀ + √(1−ᾱ)·ε̂ still holds.
        let ab = s.alpha_bar[50];
        let x = Tensor::<4>::ones([1, 1, 1, 1], &d);
        let (x0, e) = s.denoised(
            x,
            Tensor::ones([1, 1, 1, 1], &d).mul_scalar(-5.0),
            ab,
            Some((0.0, 1.0)),
        );
        let (x0, e) = (vals(x0)[0] as f64, vals(e)[0] as f64);
        assert_eq!(x0, 1.0);
        assert!((ab.sqrt() * x0 + (1.0 - ab).sqrt() * e - 1.0).abs() < 1e-5);
    }

    #[test]
    fn ancestral_sampling_reproduces_a_gaussian() {
        for p in [Prediction::Epsilon, Prediction::V] {
            sample_a_gaussian(p);
        }
    }

    /// The optimal output for data N(μ, s²) per pixel: E[ε | x_t] = √(1−ᾱ)(x_t − √ᾱ μ)/(ᾱ s²
    /// + 1 − ᾱ), E[x₀ | x_t] = μ + √ᾱ s²(x_t − √ᾱ μ)/(ᾱ s² + 1 − ᾱ), v from both.
    fn gaussian(s: &Schedule, mu: f64, sd: f64) -> impl FnMut(Tensor<4>, usize) -> Tensor<4> + '_ {
        move |x, t| {
            let ab = s.alpha_bar[t];
            let r = x
                .sub_scalar(ab.sqrt() * mu)
                .div_scalar(ab * sd * sd + 1.0 - ab);
            let e = r.clone().mul_scalar((1.0 - ab).sqrt());
            match s.prediction {
                Prediction::Epsilon => e,
                Prediction::V => {
                    let x0 = r.mul_scalar(ab.sqrt() * sd * sd).add_scalar(mu);
                    e.mul_scalar(ab.sqrt()) - x0.mul_scalar((1.0 - ab).sqrt())
                }
            }
        }
    }

    fn sample_a_gaussian(p: Prediction) {
        let d = Device::flex();
        let s = Schedule::new(BetaSchedule::Linear, 1000).predicting(p);
        let (mu, sd) = (1.5f64, 0.5f64);
        let mut net = gaussian(&s, mu, sd);
        let mut noise = Noise::new(7, 0);
        let x = noise.normal([16, 1, 16, 16], &d);
        let moments = |v: Vec<f32>| {
            let n = v.len() as f64;
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            (
                m,
                (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n).sqrt(),
            )
        };
        let (m, sdev) = moments(vals(s.ancestral(
            x.clone(),
            999,
            &mut net,
            &mut noise,
            None,
        )));
        assert!(
            (m - mu).abs() < 0.03 && (sdev - sd).abs() < 0.03,
            "{p:?} ancestral: {m} {sdev}"
        );
        // DDIM maps the noise deterministically onto the same distribution (the probability
        // flow), also with x̂₀ clamped to a range that holds the data. Its discretisation
        // narrows the distribution with few steps (tests/python/ddim_gaussian_reference.py: sd 0.431,
        // 0.471, 0.493, 0.499 at 20, 50, 200, 1000 steps), so 200 steps.
        for clip in [None, Some((-5.0, 8.0))] {
            let (m, sdev) = moments(vals(s.ddim(x.clone(), 999, 200, &mut net, clip)));
            assert!(
                (m - mu).abs() < 0.03 && (sdev - sd).abs() < 0.03,
                "{p:?} DDIM: {m} {sdev}"
            );
        }
        // Clamping x̂₀ to [1, 2] keeps the samples there.
        let v = vals(s.ddim(x, 999, 50, &mut net, Some((1.0, 2.0))));
        assert!(v.iter().all(|&x| (0.999..=2.001).contains(&x)));
    }

    #[test]
    fn ddim_inversion_round_trips() {
        for p in [Prediction::Epsilon, Prediction::V] {
            round_trip(p);
        }
    }

    fn round_trip(p: Prediction) {
        let d = Device::flex();
        let s = Schedule::new(BetaSchedule::Cosine, 1000).predicting(p);
        let (mu, sd) = (0.3f64, 0.8f64);
        let mut net = gaussian(&s, mu, sd);
        let x0 = Noise::new(3, 3)
            .normal([2, 1, 4, 4], &d)
            .mul_scalar(sd)
            .add_scalar(mu);
        // Inversion evaluates the network one step behind the sampler, so the round trip is exact only
        // in the limit: the error must shrink as the steps grow.
        let mut err = |n: usize| {
            let z = s.ddim_invert(x0.clone(), 600, n, &mut net);
            let back = s.ddim(z, 600, n, &mut net, None);
            vals((back - x0.clone()).abs())
                .into_iter()
                .fold(0f32, f32::max)
        };
        let (coarse, fine) = (err(50), err(400));
        assert!(
            fine < 0.01 && fine < coarse / 4.0,
            "{p:?}: {coarse} → {fine}"
        );
    }

    #[test]
    fn both_targets_invert_and_decode_alike_with_equivalent_predictors() {
        // The exact ε and v of the same Gaussian are one predictor: DDIM inversion and
        // decoding must give the same images for both, also at a short schedule (T = 50),
        // where ᾱ₀ is furthest from 1.
        let d = Device::flex();
        let (mu, sd) = (0.3f64, 0.8f64);
        let x0 = Noise::new(5, 5)
            .normal([2, 1, 4, 4], &d)
            .mul_scalar(sd)
            .add_scalar(mu);
        let run = |p: Prediction| {
            let s = Schedule::new(BetaSchedule::Cosine, 50).predicting(p);
            let mut net = gaussian(&s, mu, sd);
            let z = s.ddim_invert(x0.clone(), 40, 10, &mut net);
            let back = s.ddim(z.clone(), 40, 10, &mut net, None);
            (vals(z), vals(back))
        };
        let ((ze, be), (zv, bv)) = (run(Prediction::Epsilon), run(Prediction::V));
        for (a, b) in ze.iter().zip(&zv).chain(be.iter().zip(&bv)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn ddim_steps_are_evenly_spaced_down_to_the_first() {
        assert_eq!(
            Schedule::ddim_steps(9, 10),
            (0..10).rev().collect::<Vec<_>>()
        );
        assert_eq!(Schedule::ddim_steps(999, 4), [999, 749, 499, 249]);
        assert_eq!(Schedule::ddim_steps(5, 1), [5]);
    }

    #[test]
    fn timestep_embedding_is_sin_then_cos() {
        let e = timestep_embedding(&[0, 7], 4, &Device::flex());
        let v: Vec<f32> = e.try_into_vec_as::<f32>().unwrap();
        assert_eq!(&v[..4], &[0.0, 0.0, 1.0, 1.0]);
        let f1 = (-(10_000f64.ln()) / 2.0).exp();
        assert!((v[5] as f64 - (7.0 * f1).sin()).abs() < 1e-6);
        assert!((v[7] as f64 - (7.0 * f1).cos()).abs() < 1e-6);
    }
}
