//! Preparing the output directory: refuse to mix runs of different pipelines, hand back the
//! manifest of an earlier run of the same pipeline (so its complete units are kept), and
//! remove only what jetpipe itself writes (`manifest.json`, `jets/`, `points/`) when told to
//! replace a dataset.

use crate::error::{Error, Result};
use crate::store::manifest::{FILE_NAME, Manifest, PARTS_DIR};
use std::path::Path;

/// What jetpipe writes at the top of a dataset directory.
pub const OWNED: &[&str] = &[FILE_NAME, PARTS_DIR, "jets", "points"];

fn clear(dir: &Path) -> Result<()> {
    for name in OWNED {
        let p = dir.join(name);
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(p, e)),
        }
    }
    Ok(())
}

/// Removes hidden temporary files (`.name.tmp`) that a killed run left in the dataset. A
/// `--part i/n` run removes only the temporary shards of its own units: other parts may be
/// writing theirs at this moment.
fn remove_temp_files(dir: &Path, part: Option<(u32, u32)>) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if !(name.starts_with('.') && name.ends_with(".tmp")) {
                continue;
            }
            let unit: Option<u32> = name
                .strip_prefix(".part-")
                .and_then(|r| r.strip_suffix(".parquet.tmp"))
                .and_then(|u| u.parse().ok());
            let mine = match (part, unit) {
                (None, _) => true,
                (Some((i, n)), Some(u)) => u % n == i,
                (Some(_), None) => false,
            };
            if mine {
                std::fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
            }
        }
    }
    Ok(())
}

/// What was in the output directory.
pub enum Previous {
    /// Nothing of jetpipe's.
    Nothing,
    /// Earlier runs of the same pipeline (same config hash), whole or `--part`: the units
    /// they list may be kept.
    SamePipeline(Vec<Manifest>),
    /// A dataset replaced because of `--overwrite`; the note says what it was.
    Replaced(String),
}

/// Makes `dir` ready for a run of the pipeline with `config_hash`. Nothing already written is
/// removed unless `overwrite` is given.
pub fn prepare(
    dir: &Path,
    config_hash: &str,
    config: &serde_json::Value,
    overwrite: bool,
    part: Option<(u32, u32)>,
) -> Result<Previous> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Output {
            path: dir.into(),
            msg: "exists and is not a directory".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let has_owned = OWNED.iter().any(|n| dir.join(n).exists());
    if !has_owned {
        return Ok(Previous::Nothing);
    }
    let refuse = |why: String| Error::Output {
        path: dir.into(),
        msg: format!(
            "{why}; refusing to write into it (pass --overwrite to replace it, or choose another sink.path)"
        ),
    };
    // The dataset's identity: its manifest, or those of the parts written so far.
    let identity = match Manifest::read(dir) {
        Ok(None) => Manifest::read_parts(dir).map(|mut p| p.pop()),
        other => other,
    };
    let note = match identity {
        Ok(Some(m)) if overwrite => format!(
            "--overwrite: replacing the earlier output of pipeline `{}` ({:?})",
            m.pipeline, m.status
        ),
        Ok(Some(m)) if m.config_hash == config_hash => {
            remove_temp_files(dir, part)?;
            let mut all: Vec<Manifest> = Manifest::read(dir)?.into_iter().collect();
            all.extend(Manifest::read_parts(dir)?);
            all.retain(|x| x.config_hash == config_hash);
            return Ok(Previous::SamePipeline(all));
        }
        Ok(Some(m)) => {
            return Err(refuse(format!(
                "holds the output of pipeline `{}` with a different config ({})",
                m.pipeline,
                config_diff(&m.config, config).join("; ")
            )));
        }
        Ok(None) if overwrite => "--overwrite: replacing a dataset without manifest".to_string(),
        Ok(None) => return Err(refuse("holds jets/ or points/ but no manifest.json".into())),
        Err(_) if overwrite => {
            "--overwrite: replacing a dataset with an unreadable manifest".to_string()
        }
        Err(e) => return Err(refuse(format!("has an unreadable manifest ({e})"))),
    };
    clear(dir)?;
    Ok(Previous::Replaced(note))
}

/// Where two configs differ, as `path: old → new` (at most 8 entries).
pub fn config_diff(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{path}: {a} → {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    if out.is_empty() {
        out.push("same settings, different jetpipe version".into());
    }
    out.truncate(8);
    out
}
