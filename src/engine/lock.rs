//! One run per output directory (per part, for `--part i/n` runs): the lock file holds the
//! pid and host of the run. It is
//! created exclusively; a lock left by a process that no longer exists on this host is
//! taken over with a note. The lock is removed when the run ends, however it ends.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A held lock; dropped = released.
pub struct RunLock {
    path: PathBuf,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl RunLock {
    /// Takes the lock of `dir`. Returns the lock and, when a stale lock was taken over, a
    /// note saying whose it was.
    pub fn acquire(dir: &Path, name: &str) -> Result<(Self, Option<String>)> {
        let path = dir.join(name);
        let me = format!("{} {}\n", std::process::id(), hostname());
        let mut note = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(me.as_bytes())
                        .map_err(|e| Error::io(&path, e))?;
                    f.sync_all().map_err(|e| Error::io(&path, e))?;
                    return Ok((Self { path }, note));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut it = text.split_whitespace();
                    let pid: Option<u32> = it.next().and_then(|p| p.parse().ok());
                    let host = it.next().unwrap_or("").to_string();
                    match pid {
                        Some(pid) if host == hostname() && !alive(pid) => {
                            note = Some(format!(
                                "took over a stale lock of process {pid} on {host}, which no longer runs"
                            ));
                            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                        }
                        _ => {
                            return Err(Error::Output {
                                path: dir.into(),
                                msg: format!(
                                    "another run holds the lock ({}: process {} on host {}); wait for it to finish, or remove the lock file if that run is gone",
                                    path.display(),
                                    pid.map_or("?".into(), |p| p.to_string()),
                                    if host.is_empty() { "?" } else { &host }
                                ),
                            });
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Output {
            path: dir.into(),
            msg: "could not take the run lock".into(),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_stale_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, note) = RunLock::acquire(dir.path(), ".jetpipe.lock").unwrap();
        assert!(note.is_none());
        let err = RunLock::acquire(dir.path(), ".jetpipe.lock")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("another run holds the lock")
                && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(lock);
        assert!(!dir.path().join(".jetpipe.lock").exists());
        // A lock of a process that cannot exist (pid beyond pid_max) on this host is stale.
        std::fs::write(
            dir.path().join(".jetpipe.lock"),
            format!("999999999 {}\n", hostname()),
        )
        .unwrap();
        let (_lock, note) = RunLock::acquire(dir.path(), ".jetpipe.lock").unwrap();
        assert!(note.unwrap().contains("stale lock of process 999999999"));
        // Another host's lock is never taken over.
        drop(_lock);
        std::fs::write(dir.path().join(".jetpipe.lock"), "1 some-other-node\n").unwrap();
        assert!(RunLock::acquire(dir.path(), ".jetpipe.lock").is_err());
    }
}
