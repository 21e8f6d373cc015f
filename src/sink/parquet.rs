//! Parquet shard writer: a shard is written under a temporary name, fsynced, and renamed to
//! its final name only when complete, so a reader never sees a partial file. The SHA-256 of
//! the bytes is computed while writing.
//!
//! Rows are handed to the Parquet encoder in slices of exactly [`WRITE_ROWS`] (the last one
//! of a shard shorter), whatever the size of the incoming batches: page and row-group
//! boundaries, and so the bytes, do not depend on the engine's batch size. The slices are
//! small so that little beyond the encoder's own row-group buffer is held in memory.

use crate::error::{Error, Result};
use crate::store::manifest::ShardRecord;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Encoding;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Fault injection for the test suite: when the environment variable
/// `JETPIPE_FAULT_WRITE_LIMIT` holds a byte count, shard writes fail with ENOSPC ("No space
/// left on device") once the process has written that many shard bytes, as a full disk does.
fn fault_write_limit() -> Option<u64> {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("JETPIPE_FAULT_WRITE_LIMIT")
            .ok()?
            .parse()
            .ok()
    })
}

static SHARD_BYTES_WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Rows per call into the Parquet encoder.
pub const WRITE_ROWS: usize = 64;

/// Counts and hashes every byte on its way to the file.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(limit) = fault_write_limit() {
            let before = SHARD_BYTES_WRITTEN
                .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if before + buf.len() as u64 > limit {
                return Err(std::io::Error::from_raw_os_error(28));
            }
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Parquet settings shared by every shard of a run.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// Rows per row group.
    pub row_group_size: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// List columns written without a dictionary: the per-channel pixel values, which are
    /// mostly distinct floats, so the dictionary costs hashing and makes the files larger
    /// (a one-off comparison on 8192 bench jets, not kept as a benchmark: 5287 → 5096 B/jet
    /// at res=256, 18034 → 17824 at res=1024).
    pub plain_lists: Vec<String>,
}

impl ShardOptions {
    /// Writer settings. The kNN lists (~37,000 values per jet over four resolutions) are
    /// delta + bit-packed instead of dictionary-encoded: the dictionary's per-value hashing
    /// was the writer's largest cost. `benches/convert.rs` re-encodes a res=1024 shard both
    /// ways and prints the time and bytes of each.
    pub fn properties(&self) -> Result<WriterProperties> {
        let item = |c: &str| ColumnPath::new(vec![c.into(), "list".into(), "item".into()]);
        let knn = item("knn");
        let mut b = WriterProperties::builder();
        for c in &self.plain_lists {
            b = b.set_column_dictionary_enabled(item(c), false);
        }
        Ok(
            b.set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
                .set_max_row_group_row_count(Some(self.row_group_size))
                .set_created_by(format!("jetpipe {}", env!("CARGO_PKG_VERSION")))
                .set_column_dictionary_enabled(knn.clone(), false)
                .set_column_encoding(knn, Encoding::DELTA_BINARY_PACKED)
                .build(),
        )
    }
}

/// One shard being written.
pub struct ShardWriter {
    root_relative: String,
    final_path: PathBuf,
    tmp_path: PathBuf,
    writer: Option<ArrowWriter<HashingWriter>>,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    rows: u64,
    /// Set once a [`FinishedShard`] owns the temporary file.
    handed_over: bool,
}

/// A shard whose bytes are complete and fsynced under its temporary name.
pub struct FinishedShard {
    tmp_path: PathBuf,
    final_path: PathBuf,
    record: ShardRecord,
}

impl FinishedShard {
    /// Renames the shard to its final name.
    pub fn publish(self) -> Result<ShardRecord> {
        std::fs::rename(&self.tmp_path, &self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?;
        Ok(self.record.clone())
    }

    /// Final path of the shard.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }
}

impl Drop for FinishedShard {
    /// An unpublished shard is removed (a no-op once renamed).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp_path);
    }
}

/// Temporary name of a shard: hidden (leading `.`) so dataset readers skip it.
pub fn tmp_name(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().unwrap_or_default().to_string_lossy();
    final_path.with_file_name(format!(".{name}.tmp"))
}

impl ShardWriter {
    /// Starts `root/relative` (parent directories are created).
    pub fn create(
        root: &Path,
        relative: &str,
        schema: SchemaRef,
        opts: &ShardOptions,
    ) -> Result<Self> {
        let final_path = root.join(relative);
        let dir = final_path.parent().expect("shard has a parent directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp_path = tmp_name(&final_path);
        let file = File::create(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer =
            ArrowWriter::try_new(sink, schema.clone(), Some(opts.properties()?)).map_err(|e| {
                Error::Output {
                    path: tmp_path.clone(),
                    msg: format!("cannot start shard: {e}"),
                }
            })?;
        Ok(Self {
            root_relative: relative.to_string(),
            final_path,
            tmp_path,
            writer: Some(writer),
            schema,
            pending: Vec::new(),
            pending_rows: 0,
            rows: 0,
            handed_over: false,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.pending_rows += batch.num_rows();
        self.pending.push(batch.clone());
        while self.pending_rows >= WRITE_ROWS {
            self.flush(WRITE_ROWS)?;
        }
        Ok(())
    }

    /// Encodes the first `n` buffered rows as one write.
    fn flush(&mut self, n: usize) -> Result<()> {
        let all = arrow::compute::concat_batches(&self.schema, &self.pending)?;
        let (head, rest) = (all.slice(0, n), all.slice(n, all.num_rows() - n));
        self.pending = vec![rest];
        self.pending_rows -= n;
        self.writer
            .as_mut()
            .expect("shard still open")
            .write(&head)
            .map_err(|e| self.annotate(e.into()))
    }

    fn annotate(&self, e: Error) -> Error {
        match e {
            Error::Parquet(p) => Error::Output {
                path: self.tmp_path.clone(),
                msg: format!("writing shard failed: {p}"),
            },
            other => other,
        }
    }

    /// Finishes the file and fsyncs it; [`FinishedShard::publish`] then renames it.
    pub fn finish(mut self) -> Result<FinishedShard> {
        if self.pending_rows > 0 {
            self.flush(self.pending_rows)?;
        }
        let writer = self.writer.take().expect("shard still open");
        let mut sink = writer.into_inner().map_err(|e| self.annotate(e.into()))?;
        sink.flush().map_err(|e| Error::io(&self.tmp_path, e))?;
        let file = sink
            .inner
            .into_inner()
            .map_err(|e| Error::io(&self.tmp_path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp_path, e))?;
        self.handed_over = true;
        Ok(FinishedShard {
            tmp_path: self.tmp_path.clone(),
            final_path: self.final_path.clone(),
            record: ShardRecord {
                path: self.root_relative.clone(),
                rows: self.rows,
                bytes: sink.bytes,
                sha256: format!("sha256:{:x}", sink.hasher.finalize()),
            },
        })
    }
}

impl Drop for ShardWriter {
    /// A shard dropped before `finish` succeeded is removed: no partial file stays behind.
    fn drop(&mut self) {
        if !self.handed_over {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
