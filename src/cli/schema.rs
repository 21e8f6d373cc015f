//! `pipeline schema`: the JSON Schemas of the pipeline and loader YAMLs and the table contracts
//! for the default configuration — the files committed under `schemas/`.

use crate::config::{PipelineConfig, parse_config};
use crate::error::{Error, Result};
use crate::store::tables::table_docs;

/// A config with every default, as the committed table contracts describe.
pub fn default_config() -> PipelineConfig {
    parse_config(
        "name: default\nsource:\n  files: [input.h5]\nsink:\n  path: out\n",
        "<default>",
    )
    .expect("default config is valid")
}

/// `(file name, pretty JSON)` of every committed schema file.
pub fn schema_files() -> Vec<(String, String)> {
    let mut files = vec![
        (
            "pipeline.schema.json".to_string(),
            serde_json::to_string_pretty(&PipelineConfig::json_schema()).expect("json"),
        ),
        (
            "loader.schema.json".to_string(),
            serde_json::to_string_pretty(&schemars::schema_for!(crate::loader::spec::LoaderFile))
                .expect("json"),
        ),
    ];
    #[cfg(feature = "train")]
    files.push((
        "train.schema.json".to_string(),
        serde_json::to_string_pretty(&schemars::schema_for!(crate::train::spec::TrainFile))
            .expect("json"),
    ));
    let docs = table_docs(&default_config());
    for doc in docs
        .into_iter()
        .chain([crate::store::tables::predictions_doc()])
    {
        files.push((
            format!("{}.schema.json", doc.table),
            serde_json::to_string_pretty(&doc).expect("json"),
        ));
    }
    for (_, text) in &mut files {
        text.push('\n');
    }
    files
}

/// Prints the schemas, or writes them into `dir`.
pub fn schema(dir: Option<&std::path::Path>) -> Result<()> {
    for (name, text) in schema_files() {
        match dir {
            Some(dir) => {
                let p = dir.join(&name);
                std::fs::write(&p, text).map_err(|e| Error::io(p, e))?;
            }
            None => println!("// {name}\n{text}"),
        }
    }
    Ok(())
}
