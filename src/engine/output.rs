//! Preparing the output directory: refuse to mix runs of different pipelines, and remove only
//! what jetpipe itself writes (`manifest.json`, `jets/`, `points/`) when replacing a dataset.

use crate::error::{Error, Result};
use crate::store::manifest::{FILE_NAME, Manifest};
use std::path::Path;

/// What jetpipe writes at the top of a dataset directory.
pub const OWNED: &[&str] = &[FILE_NAME, "jets", "points"];

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

/// Makes `dir` ready for a run of the pipeline with `config_hash`. Returns a note for the
/// user when an earlier dataset is replaced.
pub fn prepare(dir: &Path, config_hash: &str, overwrite: bool) -> Result<Option<String>> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Output {
            path: dir.into(),
            msg: "exists and is not a directory".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let has_owned = OWNED.iter().any(|n| dir.join(n).exists());
    if !has_owned {
        return Ok(None);
    }
    let refuse = |why: String| Error::Output {
        path: dir.into(),
        msg: format!(
            "{why}; refusing to write into it (pass --overwrite to replace it, or choose another sink.path)"
        ),
    };
    let note = match Manifest::read(dir) {
        Ok(Some(m)) if m.config_hash == config_hash => {
            format!(
                "replacing the earlier output of this pipeline (status {:?})",
                m.status
            )
        }
        Ok(Some(m)) if overwrite => format!(
            "--overwrite: replacing the output of pipeline `{}`",
            m.pipeline
        ),
        Ok(Some(m)) => {
            return Err(refuse(format!(
                "holds the output of pipeline `{}` with config {}, but this run's config is {}",
                m.pipeline, m.config_hash, config_hash
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
    Ok(Some(note))
}
