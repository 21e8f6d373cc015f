//! Batches as `.npy` files (NumPy format 1.0, little-endian, C order), for `pipeline load
//! --dump`: what a model is fed, readable with `numpy.load` and comparable byte for byte
//! with the Python package's arrays.

use crate::error::{Error, Result};
use crate::loader::Batch;
use std::path::Path;

/// A numeric type with its NumPy `descr` and little-endian bytes.
pub trait NpyElement: Copy {
    /// NumPy type string, e.g. `<f4`.
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! npy_element {
    ($($t:ty => $d:literal),*) => {$(
        impl NpyElement for $t {
            const DESCR: &'static str = $d;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
npy_element!(f32 => "<f4", u8 => "|u1", i8 => "|i1", u16 => "<u2", u64 => "<u8");

/// The bytes of a `.npy` file holding `data` with `shape` (their product must be its length).
pub fn npy_bytes<T: NpyElement>(data: &[T], shape: &[usize]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape of npy data"
    );
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        T::DESCR
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + std::mem::size_of_val(data));
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in data {
        x.put(&mut out);
    }
    out
}

/// Writes one batch as `dir/{points,mask,labels,jet_ids,n_points[,neighbours,knn_k][,image]}.npy`
/// with the shapes of [`Batch`]'s fields.
pub fn write_batch(dir: &Path, b: &Batch) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (n, r, f, k) = (b.size, b.res, b.features, b.k);
    let mut files = vec![
        ("points", npy_bytes(&b.points, &[n, r, f])),
        ("mask", npy_bytes(&b.mask, &[n, r])),
        ("labels", npy_bytes(&b.labels, &[n])),
        ("jet_ids", npy_bytes(&b.jet_ids, &[n])),
        ("n_points", npy_bytes(&b.n_points, &[n])),
    ];
    if k > 0 {
        files.push(("neighbours", npy_bytes(&b.neighbours, &[n, r, k])));
        files.push(("knn_k", npy_bytes(&b.knn_k, &[n])));
    }
    if !b.image.is_empty() {
        let [c, h, w] = b.image_dims;
        files.push(("image", npy_bytes(&b.image, &[n, c, h, w])));
    }
    for (name, bytes) in files {
        let path = dir.join(format!("{name}.npy"));
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_numpys() {
        let b = npy_bytes(&[1.5f32, -2.0], &[2]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert_eq!(
            header.trim_end(),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
        );
        assert!(header.ends_with('\n'));
        assert_eq!(
            &b[10 + hlen..],
            [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
        let b = npy_bytes(&[7u16; 6], &[1, 2, 3]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert!(
            std::str::from_utf8(&b[10..10 + hlen])
                .unwrap()
                .contains("'shape': (1, 2, 3)")
        );
    }
}
