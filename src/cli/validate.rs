//! `pipeline validate`: parse and check the YAML, then open every input file and check its
//! datasets, shapes and dtypes. Converts nothing.

use crate::config::LoadedConfig;
use crate::error::Result;
use crate::source::Hdf5Source;

/// Prints what the pipeline would read, or fails with the first problem.
pub fn validate(loaded: &LoadedConfig) -> Result<()> {
    let cfg = &loaded.config;
    let source = Hdf5Source::open(&cfg.source)?;
    let g = source.geometry;
    println!("{}: ok", loaded.path.display());
    println!("pipeline:  {} ({})", cfg.name, cfg.content_hash());
    for f in &source.files {
        println!(
            "source:    {} — {} jets, {} {}×{}×{} ({:?})",
            f.path.display(),
            f.n_jets,
            f.image_dtype,
            g.height,
            g.width,
            g.channels,
            g.layout
        );
    }
    println!("output:    {}", cfg.sink.path.display());
    Ok(())
}
