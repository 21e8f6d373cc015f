//! The model registry: every trainable model, by its YAML name. This is the only place that
//! matches on a model; the loop (`fit`), `eval`, `compare` and the CLI go through
//! [`ModelSpec`] and its [`ModelVisitor`].
//! Adding a model: a file here implementing [`Classifier`](crate::train::contract::Classifier)
//! or [`JetModel`],
//! a [`ModelSpec`] variant, and one arm in [`ModelSpec::visit`].

pub mod agg_transformer;
pub mod baseline;
pub mod ddpm;
pub mod gnn;
pub mod part;
pub mod particle_net;
pub mod resnet_pc;
pub mod vae;

use crate::error::{Error, Result};
use crate::loader::LoaderSpec;
use crate::train::contract::{Dims, JetModel, Make, Needs};
use burn::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which model to train (the `model:` key of the training YAML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    /// ResNet-PC of e2e_sparse, e.g. `{resnet_pc: 1024_S}`.
    ResnetPc(resnet_pc::Variant),
    /// Logistic regression on the `jets` table's features (the baseline to beat).
    FeaturesBaseline,
    /// e2e_sparse's Aggregation Transformer, e.g.
    /// `{aggregation_transformer: {variant: 256_S, mask: true}}`.
    AggregationTransformer(agg_transformer::AggConfig),
    /// A GCN, GraphSAGE, GIN or GAT classifier on the stored kNN graph, e.g.
    /// `{gnn: {conv: gcn}}`.
    Gnn(gnn::GnnConfig),
    /// ParticleNet (EdgeConv blocks), e.g. `{particle_net: {dynamic: true}}`.
    ParticleNet(particle_net::ParticleNetConfig),
    /// The Particle Transformer with pair-interaction attention bias, e.g.
    /// `{particle_transformer: {layers: 8}}`.
    ParticleTransformer(part::PartConfig),
    /// A variational autoencoder of the loader's images, e.g. `{vae: {latent: 32}}`.
    Vae(vae::VaeConfig),
    /// A denoising diffusion model of the loader's images, e.g. `{ddpm: {timesteps: 1000}}`.
    Ddpm(ddpm::DdpmConfig),
}

/// Something done with a model type: the registry calls [`ModelVisitor::visit`] with the
/// constructor of the model a spec names.
pub trait ModelVisitor {
    /// What the visit returns.
    type Out;
    /// Runs with the model that `make` builds (`title` names it, it reads `needs`).
    fn visit<M: JetModel>(self, title: &str, needs: Needs, make: Make<M>) -> Self::Out;
}

impl ModelSpec {
    /// Calls `v` with this model's constructor: the one `match` on the model.
    pub fn visit<V: ModelVisitor>(&self, v: V) -> V::Out {
        let title = self.title();
        match self {
            &ModelSpec::ResnetPc(var) => {
                let make = move |d: &Device, x: Dims| {
                    resnet_pc::ResNetPc::new(var, x.features, x.jet_inputs, d)
                };
                v.visit(&title, resnet_pc::NEEDS, &make)
            }
            ModelSpec::FeaturesBaseline => {
                let make = |d: &Device, x: Dims| baseline::Logistic::new(x.jet_inputs, d);
                v.visit(&title, baseline::NEEDS, &make)
            }
            &ModelSpec::AggregationTransformer(c) => {
                let make = move |d: &Device, x: Dims| agg_transformer::AggTransformer::new(c, x, d);
                v.visit(&title, c.needs(), &make)
            }
            &ModelSpec::Gnn(c) => {
                let make = move |d: &Device, x: Dims| gnn::Gnn::new(c, x, d);
                v.visit(&title, c.needs(), &make)
            }
            ModelSpec::ParticleNet(c) => {
                let make =
                    move |d: &Device, x: Dims| particle_net::ParticleNet::new(c.clone(), x, d);
                v.visit(&title, c.needs(), &make)
            }
            ModelSpec::ParticleTransformer(c) => {
                let make = move |d: &Device, x: Dims| part::ParT::new(c, x, d);
                v.visit(&title, c.needs(), &make)
            }
            &ModelSpec::Vae(c) => {
                let make = move |d: &Device, x: Dims| vae::Vae::new(c, x, d);
                v.visit(&title, c.needs(), &make)
            }
            ModelSpec::Ddpm(c) => {
                let make = move |d: &Device, x: Dims| ddpm::Ddpm::new(c, x, d);
                v.visit(&title, c.needs(), &make)
            }
        }
    }

    /// The model's name in output and plots, e.g. `ResNet-PC 1024_S`.
    pub fn title(&self) -> String {
        match self {
            ModelSpec::ResnetPc(v) => format!("ResNet-PC {}", v.name()),
            ModelSpec::FeaturesBaseline => "features baseline".into(),
            ModelSpec::AggregationTransformer(c) => c.title(),
            ModelSpec::Gnn(c) => c.title(),
            ModelSpec::ParticleNet(c) => c.title(),
            ModelSpec::ParticleTransformer(c) => c.title(),
            ModelSpec::Vae(c) => c.title(),
            ModelSpec::Ddpm(c) => c.title(),
        }
    }

    /// What the model reads from a batch.
    pub fn needs(&self) -> Needs {
        struct N;
        impl ModelVisitor for N {
            type Out = Needs;
            fn visit<M: JetModel>(self, _: &str, needs: Needs, _: Make<M>) -> Needs {
                needs
            }
        }
        self.visit(N)
    }

    /// The loader resolution the model is made for, if it is made for one.
    pub fn resolution(&self) -> Option<u32> {
        match self {
            ModelSpec::ResnetPc(v) => Some(v.resolution()),
            ModelSpec::FeaturesBaseline => None,
            ModelSpec::AggregationTransformer(c) => Some(c.variant.resolution()),
            ModelSpec::Gnn(_)
            | ModelSpec::ParticleNet(_)
            | ModelSpec::ParticleTransformer(_)
            | ModelSpec::Vae(_)
            | ModelSpec::Ddpm(_) => None,
        }
    }

    /// Refuses loader settings this model cannot train on (a resolution it is not made for,
    /// or no neighbours for a model that reads them) and sizes it cannot be built with.
    pub fn check(&self, loader: &LoaderSpec) -> Result<()> {
        let invalid = match self {
            ModelSpec::Gnn(c) => c.invalid(),
            ModelSpec::ParticleNet(c) => c.invalid(loader.resolution),
            ModelSpec::ParticleTransformer(c) => c.invalid(loader),
            ModelSpec::Vae(c) => c.invalid(),
            ModelSpec::Ddpm(c) => c.invalid(),
            _ => None,
        };
        if let Some(e) = invalid {
            return Err(Error::Config(format!("model {}: {e}", self.title())));
        }
        if let Some(r) = self.resolution()
            && r != loader.resolution
        {
            return Err(Error::Config(format!(
                "model {} is made for resolution {r}, the loader reads {}",
                self.title(),
                loader.resolution
            )));
        }
        if self.needs().image && loader.image.is_none() {
            return Err(Error::Config(format!(
                "model {} reads images: set the loader's `image:` view (e.g. `image: {{pool: 4, \
                 transforms: [log1p]}}`)",
                self.title()
            )));
        }
        if self.needs().neighbours && !loader.neighbours {
            return Err(Error::Config(format!(
                "model {} reads the kNN graph: set `neighbours: true` in the loader",
                self.title()
            )));
        }
        Ok(())
    }
}
