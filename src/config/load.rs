//! Reading a pipeline YAML file into a validated [`PipelineConfig`], and its identity hash.

use super::PipelineConfig;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A validated config together with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The YAML file (as given on the command line).
    pub path: PathBuf,
    /// The resolved config: defaults filled in, command-line overrides applied.
    pub config: PipelineConfig,
}

/// Parses and validates YAML text of any of jetpipe's configs (`what`: pipeline, loader,
/// training). Unknown keys, wrong types and out-of-range values are errors that name
/// `origin`, the line and the column.
pub fn parse_yaml<T>(text: &str, origin: &str, what: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + garde::Validate,
    <T as garde::Validate>::Context: Default,
{
    serde_saphyr::from_str_valid::<T>(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{origin}:{}:{}", l.line(), l.column()))
            .unwrap_or_else(|| origin.to_string());
        Error::Config(format!("{at}: invalid {what} config\n{e}"))
    })
}

/// Reads the text of a `what` config file.
pub fn read_yaml(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    })
}

/// Parses pipeline YAML text (see [`parse_yaml`]).
pub fn parse_config(text: &str, origin: &str) -> Result<PipelineConfig> {
    parse_yaml(text, origin, "pipeline")
}

/// Reads and validates a pipeline YAML file.
pub fn load_config(path: &Path) -> Result<LoadedConfig> {
    let text = read_yaml(path, "pipeline")?;
    let config = parse_config(&text, &path.display().to_string())?;
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        config,
    })
}

impl PipelineConfig {
    /// `sha256:<hex>` over everything that determines the output bytes: source, stages and
    /// sink settings. The engine section (threads, queues) and the output path are left out.
    pub fn content_hash(&self) -> String {
        let mut identity = self.clone();
        identity.engine = Default::default();
        identity.sink.path = PathBuf::new();
        let json = serde_json::to_vec(&identity).expect("config serialises");
        format!("sha256:{:x}", Sha256::digest(&json))
    }

    /// Worker threads to use: `engine.threads`, or when 0 the cores left by the writers (at
    /// least one). A worker and a writer cost about the same CPU per jet
    /// (`benches/convert.rs` prints both), so by default the cores are split evenly.
    pub fn worker_threads(&self) -> usize {
        match self.engine.threads {
            0 => cores().saturating_sub(self.writer_threads()).max(1),
            n => n,
        }
    }

    /// Unit writer threads: `engine.writers`, or half the cores (at least one) when 0.
    pub fn writer_threads(&self) -> usize {
        match self.engine.writers {
            0 => (cores() / 2).max(1),
            n => n,
        }
    }
}

/// Cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: t\nsource:\n  files: [a.h5]\nsink:\n  path: out/t\n";

    #[test]
    fn defaults_are_filled_in() {
        let c = parse_config(MINIMAL, "t.yaml").unwrap();
        assert_eq!(c.source.datasets.images, "X_jets");
        assert_eq!(c.source.datasets.label.as_deref(), Some("y"));
        assert_eq!(c.source.channels, ["tracks", "ecal", "hcal"]);
        assert_eq!(c.stages.pointcloud.resolutions, [256, 512, 768, 1024]);
        assert_eq!(c.stages.pointcloud.pixel_size, 0.0174);
        assert_eq!(c.sink.shard_size, 4096);
        assert_eq!(c.engine.batch_size, 64);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "name: t\nsource:\n  files: [a.h5]\n  colour: red\nsink:\n  path: o\n";
        let err = parse_config(text, "p.yaml").unwrap_err().to_string();
        assert!(err.starts_with("p.yaml:4:"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_value_names_line() {
        let text = "name: t\nsource:\n  files: [a.h5]\nstages:\n  pointcloud:\n    resolutions: [512, 256]\nsink:\n  path: o\n";
        let err = parse_config(text, "p.yaml").unwrap_err().to_string();
        assert!(err.starts_with("p.yaml:6:"), "{err}");
        assert!(err.contains("strictly increasing"), "{err}");
    }

    #[test]
    fn null_scalar_dataset_means_absent() {
        let text = "name: t\nsource:\n  files: [a.h5]\n  datasets: {images: X, pt: null, m0: null}\nsink:\n  path: o\n";
        let c = parse_config(text, "p.yaml").unwrap();
        assert_eq!(c.source.datasets.pt, None);
        assert_eq!(c.source.datasets.label.as_deref(), Some("y"));
    }

    #[test]
    fn hash_ignores_engine_and_output_path_only() {
        let a = parse_config(MINIMAL, "t").unwrap();
        let mut b = a.clone();
        b.engine.threads = 7;
        b.sink.path = "elsewhere".into();
        assert_eq!(a.content_hash(), b.content_hash());
        b.stages.pointcloud.threshold = 0.5;
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
