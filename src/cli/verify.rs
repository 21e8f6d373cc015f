//! `pipeline verify DIR`: re-read every shard and check it against the manifest and the
//! sources; a non-zero exit code and one line per problem when anything is off.

use crate::engine::verify::verify as verify_dataset;
use crate::error::{Error, Result};
use std::path::Path;

/// Prints the report; fails when there is any problem.
pub fn verify(dir: &Path) -> Result<()> {
    let r = verify_dataset(dir)?;
    for p in &r.problems {
        println!("problem: {p}");
    }
    println!(
        "{}: {} shards, {} jets checked, {} problem(s)",
        dir.display(),
        r.shards,
        r.jets,
        r.problems.len()
    );
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Output {
            path: dir.into(),
            msg: format!("verification failed with {} problem(s)", r.problems.len()),
        })
    }
}
