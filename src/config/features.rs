//! Settings of the jet-features stage (its own file to keep the config module small).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A group of jet-level features written to the `jets` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureGroup {
    /// `hits_<ch>`: pixels with the channel above the threshold.
    Hits,
    /// `sum_total` and `frac_<ch>`: energy sums and channel fractions.
    Energy,
    /// `width_<ch>`, `width_total`: energy-weighted mean ΔR from the image centre (girth).
    Width,
    /// `ptd_<ch>`, `ptd_total`: Σe² / (Σe)².
    Ptd,
    /// `lead_frac`: fraction of the energy in the leading pixel.
    Leading,
    /// `core_frac`: fraction of the energy within ΔR < `core_radius`.
    Core,
    /// `axis_major`, `axis_minor`, `eccentricity`: second moments of the energy distribution.
    Moments,
    /// `kept_frac_<res>`: fraction of the hits kept at each resolution.
    Kept,
}

/// Jet-features settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Feature groups to compute. Default: all of them.
    #[serde(default = "all_groups")]
    #[garde(skip)]
    pub groups: Vec<FeatureGroup>,
    /// Radius (ΔR) of the core for `core_frac`. Default: 0.1.
    #[serde(default = "default_core_radius")]
    #[garde(custom(super::validate::positive))]
    pub core_radius: f32,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            groups: all_groups(),
            core_radius: default_core_radius(),
        }
    }
}

fn all_groups() -> Vec<FeatureGroup> {
    use FeatureGroup::*;
    vec![Hits, Energy, Width, Ptd, Leading, Core, Moments, Kept]
}

fn default_core_radius() -> f32 {
    0.1
}
