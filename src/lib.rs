//! jetpipe: streaming conversion of HEP jet-image HDF5 files into Arrow/Parquet point clouds.
//!
//! Layers, top to bottom; a module uses only modules of lower layers (`layering` test below,
//! which scans `src/` for `crate::` paths):
//!
//! | layer | modules |
//! |---|---|
//! | 9 | `cli` |
//! | 8 | `train` (its `sample` converts generated jets with `engine`) |
//! | 7 | `engine` (a run) |
//! | 6 | `stages`, `sink`, `sql`, `loader` |
//! | 5 | `store` (table schemas, manifest) |
//! | 4 | `batch` (jets in flight) |
//! | 3 | `source` (HDF5) |
//! | 2 | `config` |
//! | 1 | `fault`, `profile`, `plot`, `generative` (metrics of generated jets) |
//! | 0 | `error` |

pub mod batch;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fault;
pub mod generative;
pub mod loader;
pub mod plot;
pub mod profile;
pub mod sink;
pub mod source;
pub mod sql;
pub mod stages;
pub mod store;
#[cfg(feature = "train")]
pub mod train;

pub use error::{Error, Result};

#[cfg(test)]
mod layering {
    /// Each top-level module's layer, as the crate documentation's table states.
    const LAYERS: [(&str, u8); 16] = [
        ("error", 0),
        ("fault", 1),
        ("generative", 1),
        ("profile", 1),
        ("plot", 1),
        ("config", 2),
        ("source", 3),
        ("batch", 4),
        ("store", 5),
        ("stages", 6),
        ("sink", 6),
        ("sql", 6),
        ("loader", 6),
        ("engine", 7),
        ("train", 8),
        ("cli", 9),
    ];

    fn layer(module: &str) -> u8 {
        LAYERS
            .iter()
            .find(|(m, _)| *m == module)
            .unwrap_or_else(|| panic!("module `{module}` has no layer in lib.rs's table"))
            .1
    }

    /// The modules of `train`, in layers (its module documentation states them).
    const TRAIN_LAYERS: [(&str, u8); 18] = [
        ("contract", 0),
        ("malloc", 0),
        ("history", 0),
        ("metrics", 0),
        ("jet_inputs", 0),
        ("nn", 1),
        ("tensors", 1),
        ("checkpoint", 1),
        ("ema", 1),
        ("plot", 1),
        ("models", 2),
        ("spec", 3),
        ("run", 4),
        ("fit", 5),
        ("device_check", 5),
        ("eval", 6),
        ("sample", 6),
        ("compare", 7),
    ];

    /// The top-level modules a source file names through `crate::` paths (comments skipped),
    /// including `crate::{a::x, b}` groups.
    pub(super) fn uses(source: &str) -> Vec<String> {
        uses_under(source, "crate::")
    }

    /// The modules right under `prefix` (e.g. `crate::train::`) that a source file names.
    pub(super) fn uses_under(source: &str, prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in source.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => {
                        let (mut depth, mut end) = (0usize, group.len());
                        for (i, ch) in group.char_indices() {
                            match ch {
                                '{' => depth += 1,
                                '}' if depth == 0 => {
                                    end = i;
                                    break;
                                }
                                '}' => depth -= 1,
                                _ => {}
                            }
                        }
                        let mut parts = Vec::new();
                        let (mut depth, mut start) = (0usize, 0usize);
                        let inner = &group[..end];
                        for (i, ch) in inner.char_indices() {
                            match ch {
                                '{' => depth += 1,
                                '}' => depth -= 1,
                                ',' if depth == 0 => {
                                    parts.push(&inner[start..i]);
                                    start = i + 1;
                                }
                                _ => {}
                            }
                        }
                        parts.push(&inner[start..]);
                        parts
                    }
                    None => vec![rest],
                };
                for n in names {
                    let ident: String = n
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // `crate::Error` and `crate::Result` are the root's re-exports of `error`.
                    match ident.as_str() {
                        "" | "self" => {}
                        "Error" | "Result" => found.push("error".to_string()),
                        _ => found.push(ident),
                    }
                }
            }
        }
        found
    }

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn parser_sees_plain_paths_and_groups() {
        let src = "use crate::store::manifest::X;\nuse crate::{error::Result, batch};\n// crate::cli in a comment\nlet x = crate::sql::run(); crate::Result<()>";
        assert_eq!(uses(src), ["store", "error", "batch", "sql", "error"]);
    }

    #[test]
    fn no_module_uses_a_module_of_its_own_or_a_higher_layer() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut bad = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(&src).expect("under src");
            let top = rel.components().next().expect("component");
            let top = top.as_os_str().to_string_lossy();
            let top = top.trim_end_matches(".rs");
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(file).expect("read source");
            for used in uses(&text) {
                if used != top && layer(&used) >= layer(top) {
                    bad.push(format!("{}: `{top}` uses `{used}`", rel.display()));
                }
            }
        }
        assert!(files.len() > 40, "found only {} source files", files.len());
        // Inside `train`, the same rule over its own layers.
        let train = src.join("train");
        for file in files.iter().filter(|f| f.starts_with(&train)) {
            let rel = file.strip_prefix(&train).expect("under train");
            let top = rel.components().next().expect("component");
            let top = top.as_os_str().to_string_lossy();
            let top = top.trim_end_matches(".rs");
            if top == "mod" {
                continue;
            }
            let layer = |m: &str| {
                TRAIN_LAYERS
                    .iter()
                    .find(|(n, _)| *n == m)
                    .unwrap_or_else(|| panic!("train module `{m}` has no layer in TRAIN_LAYERS"))
                    .1
            };
            let text = std::fs::read_to_string(file).expect("read source");
            for used in uses_under(&text, "crate::train::") {
                if used != top && layer(&used) >= layer(top) {
                    bad.push(format!("train/{}: `{top}` uses `{used}`", rel.display()));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "upward or sideways uses:\n{}",
            bad.join("\n")
        );
    }
}
