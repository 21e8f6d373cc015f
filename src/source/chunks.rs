//! Direct chunk reads: the compressed bytes of an image dataset's chunks, read from the file
//! without the HDF5 library, and inflated on the worker threads.
//!
//! The HDF5 C library serialises every call, so a plain read inflates gzip chunks on one
//! core. When the image dataset allows it, the reader instead takes each chunk's file address
//! and size from the chunk index (once, at open), reads the raw bytes with `pread`, and the
//! workers inflate them with libdeflate and undo the shuffle filter in parallel.
//!
//! Used only when every condition holds (otherwise the plain library read is used, which is
//! equivalent; `tests/it/direct_read.rs` checks that both give identical outputs):
//! - chunked, each chunk covering whole images (chunk shape `(c, …full image…)`);
//! - filters exactly `[deflate]` or `[shuffle, deflate]`, applied to every chunk;
//! - little-endian float32 or float64 elements;
//! - every chunk allocated, and no user block before the HDF5 data.

use hdf5::filters::Filter;
use libdeflater::Decompressor;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where a dataset's chunks are and how to decode them.
#[derive(Debug)]
pub struct ChunkIndex {
    /// Jets per chunk.
    pub jets_per_chunk: usize,
    /// Bytes per element (4 or 8).
    pub elem_size: usize,
    /// Whether the shuffle filter was applied before deflate.
    pub shuffle: bool,
    /// Per chunk, by position: (file address, stored size in bytes).
    chunks: Vec<(u64, u32)>,
    file: std::fs::File,
}

/// The stored bytes of the chunks covering a range of jets.
pub struct CompressedJets {
    /// Index in the file of the first jet of the first chunk.
    pub first_jet: u64,
    /// Jets per chunk.
    pub jets_per_chunk: usize,
    /// Bytes per element (4 or 8).
    pub elem_size: usize,
    /// Whether to undo the shuffle filter.
    pub shuffle: bool,
    /// Each chunk's stored (deflated) bytes, in order.
    pub chunks: Vec<Vec<u8>>,
}

impl ChunkIndex {
    /// The direct-read plan for `ds` of a file at `path`, or `None` when the dataset does not
    /// qualify (see the module documentation).
    pub fn build(path: &Path, file: &hdf5::File, ds: &hdf5::Dataset) -> Option<Self> {
        let chunk = ds.chunk()?;
        let shape = ds.shape();
        if chunk.len() != shape.len() || chunk[1..] != shape[1..] || chunk[0] == 0 {
            return None;
        }
        let shuffle = match ds.filters().as_slice() {
            [Filter::Deflate(_)] => false,
            [Filter::Shuffle, Filter::Deflate(_)] => true,
            _ => return None,
        };
        let dtype = ds.dtype().ok()?;
        let elem_size = dtype.size();
        let float = matches!(
            dtype.to_descriptor(),
            Ok(hdf5::types::TypeDescriptor::Float(_))
        );
        let le = dtype.byte_order() == hdf5::datatype::ByteOrder::LittleEndian;
        if !float || !le || !(elem_size == 4 || elem_size == 8) || file.userblock() != 0 {
            return None;
        }
        let n_chunks = shape[0].div_ceil(chunk[0]);
        let mut chunks = vec![(u64::MAX, 0u32); n_chunks];
        let mut ok = true;
        let visited = ds.chunks_visit(|info| {
            let slot = info.offset[0] as usize / chunk[0];
            match (chunks.get_mut(slot), u32::try_from(info.size)) {
                (Some(c), Ok(size)) if info.filter_mask == 0 => *c = (info.addr, size),
                _ => ok = false,
            }
            0
        });
        if visited.is_err() || !ok || chunks.iter().any(|c| c.0 == u64::MAX) {
            return None;
        }
        Some(Self {
            jets_per_chunk: chunk[0],
            elem_size,
            shuffle,
            chunks,
            file: std::fs::File::open(path).ok()?,
        })
    }

    /// Reads the stored bytes of every chunk that holds a jet of `start .. start + n`.
    pub fn read(&self, start: u64, n: usize) -> std::io::Result<CompressedJets> {
        let c = self.jets_per_chunk as u64;
        let (first, last) = (start / c, (start + n as u64 - 1) / c);
        let mut chunks = Vec::with_capacity((last - first + 1) as usize);
        for &(addr, size) in &self.chunks[first as usize..=last as usize] {
            let mut buf = vec![0u8; size as usize];
            self.file.read_exact_at(&mut buf, addr)?;
            chunks.push(buf);
        }
        Ok(CompressedJets {
            first_jet: first * c,
            jets_per_chunk: self.jets_per_chunk,
            elem_size: self.elem_size,
            shuffle: self.shuffle,
            chunks,
        })
    }
}

/// Per-worker decoding state: the inflater and the last decoded chunk.
pub struct ChunkDecoder {
    inflater: Decompressor,
    bytes: Vec<u8>,
    unshuffled: Vec<u8>,
    /// The decoded chunk as float32.
    values: Vec<f32>,
    /// (batch identity, chunk position) of `values`.
    current: Option<(u64, usize)>,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self {
            inflater: Decompressor::new(),
            bytes: Vec::new(),
            unshuffled: Vec::new(),
            values: Vec::new(),
            current: None,
        }
    }
}

impl ChunkDecoder {
    /// The image of jet `jet` (file index) as float32, `per_jet` values, decoding its chunk
    /// unless it is the one decoded last for batch `batch_id`. The error is the inflater's.
    pub fn image(
        &mut self,
        src: &CompressedJets,
        batch_id: u64,
        jet: u64,
        per_jet: usize,
    ) -> Result<&mut [f32], String> {
        let c = src.jets_per_chunk;
        let pos = ((jet - src.first_jet) / c as u64) as usize;
        if self.current != Some((batch_id, pos)) {
            self.current = None;
            let raw_len = c * per_jet * src.elem_size;
            self.bytes.resize(raw_len, 0);
            let got = self
                .inflater
                .zlib_decompress(&src.chunks[pos], &mut self.bytes)
                .map_err(|e| format!("the gzip chunk does not inflate ({e:?})"))?;
            if got != raw_len {
                return Err(format!(
                    "the gzip chunk inflates to {got} bytes, expected {raw_len}"
                ));
            }
            let bytes = if src.shuffle {
                unshuffle(&self.bytes, src.elem_size, &mut self.unshuffled);
                &self.unshuffled
            } else {
                &self.bytes
            };
            self.values.clear();
            match src.elem_size {
                4 => self.values.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                _ => self.values.extend(bytes.chunks_exact(8).map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })),
            }
            self.current = Some((batch_id, pos));
        }
        let at = ((jet - src.first_jet) as usize % c) * per_jet;
        Ok(&mut self.values[at..at + per_jet])
    }
}

/// Undoes HDF5's shuffle filter: byte b of element i was stored at `b * n + i`.
fn unshuffle(src: &[u8], size: usize, out: &mut Vec<u8>) {
    let n = src.len() / size;
    out.clear();
    out.resize(src.len(), 0);
    for b in 0..size {
        for (i, &v) in src[b * n..(b + 1) * n].iter().enumerate() {
            out[i * size + b] = v;
        }
    }
    // Trailing bytes that do not form an element are stored unshuffled.
    out[n * size..].copy_from_slice(&src[n * size..]);
}

#[cfg(test)]
mod tests {
    use super::unshuffle;

    #[test]
    fn unshuffle_restores_element_bytes() {
        // Two 4-byte elements AABBCCDD, EEFFGGHH shuffled to AE BF CG DH, plus a trailing byte.
        let src = [0xA, 0xE, 0xB, 0xF, 0xC, 0x1, 0xD, 0x2, 0x9];
        let mut out = Vec::new();
        unshuffle(&src, 4, &mut out);
        assert_eq!(out, [0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x1, 0x2, 0x9]);
    }
}
