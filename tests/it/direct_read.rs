//! Direct chunk reads (gzip chunks inflated on the workers) against the HDF5 library's own
//! read, on every storage layout a physicist's file may have: the qualifying ones take the
//! direct path, the others fall back, and the Parquet bytes are identical either way.

use crate::common::*;
use jetpipe::config::Inflate;
use jetpipe::engine::run;
use jetpipe::source::Hdf5Source;
use ndarray::Array4;
use std::path::Path;

/// How the image dataset is stored.
#[derive(Debug, Clone, Copy)]
struct Storage {
    /// Jets per chunk (0 = contiguous).
    chunk: usize,
    shuffle: bool,
    deflate: bool,
    f64: bool,
}

fn write(path: &Path, jets: &Jets, s: Storage) {
    let file = hdf5::File::create(path).unwrap();
    let shape = [jets.n, jets.h, jets.w, jets.c];
    let arr = Array4::from_shape_vec(shape, jets.images.clone()).unwrap();
    macro_rules! build {
        ($data:expr) => {{
            let mut b = file.new_dataset_builder();
            if s.chunk > 0 {
                b = b.chunk([s.chunk, jets.h, jets.w, jets.c]);
            }
            if s.shuffle {
                b = b.shuffle();
            }
            if s.deflate {
                b = b.deflate(4);
            }
            b.with_data($data).create("X_jets").unwrap();
        }};
    }
    if s.f64 {
        build!(&arr.mapv(f64::from));
    } else {
        build!(&arr);
    }
    for (name, v) in [("pt", &jets.pt), ("m0", &jets.m0), ("y", &jets.y)] {
        file.new_dataset_builder()
            .with_data(v.as_slice())
            .create(name)
            .unwrap();
    }
}

fn parquet_bytes(out: &Path) -> Vec<(String, Vec<u8>)> {
    tree(out)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .map(|f| {
            let b = std::fs::read(out.join(&f)).unwrap();
            (f, b)
        })
        .collect()
}

#[test]
fn direct_and_library_reads_give_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // 23 jets: not a multiple of the 4-jet chunks, and batches of 7 cut chunks in two.
    let jets = random_jets(3, 23, 40, 40, 3);
    let cases = [
        (
            Storage {
                chunk: 1,
                shuffle: false,
                deflate: true,
                f64: false,
            },
            true,
        ),
        (
            Storage {
                chunk: 1,
                shuffle: true,
                deflate: true,
                f64: false,
            },
            true,
        ),
        (
            Storage {
                chunk: 4,
                shuffle: false,
                deflate: true,
                f64: false,
            },
            true,
        ),
        (
            Storage {
                chunk: 4,
                shuffle: true,
                deflate: true,
                f64: true,
            },
            true,
        ),
        (
            Storage {
                chunk: 3,
                shuffle: false,
                deflate: false,
                f64: false,
            },
            false,
        ),
        (
            Storage {
                chunk: 0,
                shuffle: false,
                deflate: false,
                f64: false,
            },
            false,
        ),
    ];
    for (i, (storage, direct)) in cases.into_iter().enumerate() {
        let h5 = dir.path().join(format!("s{i}.h5"));
        write(&h5, &jets, storage);
        let cfg = config(&[&h5], &dir.path().join("unused"), "");
        let source = Hdf5Source::open(&cfg.source).unwrap();
        assert_eq!(source.files[0].direct_read(), direct, "{storage:?}");
        let mut outputs = Vec::new();
        for inflate in [Inflate::Workers, Inflate::Library] {
            let out = dir.path().join(format!("out{i}_{inflate:?}"));
            let mut cfg = config(&[&h5], &out, "");
            cfg.engine.inflate = inflate;
            cfg.engine.threads = 2;
            run(&cfg, &quiet()).unwrap();
            outputs.push(parquet_bytes(&out));
        }
        assert_eq!(outputs[0].len(), 1 + 4, "{storage:?}"); // one unit: jets + 4 resolutions
        assert!(outputs[0] == outputs[1], "outputs differ for {storage:?}");
    }
}

#[test]
fn corrupt_chunk_names_file_and_jet_on_either_path() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("bad.h5");
    let mut jets = random_jets(4, 6, 20, 20, 3);
    for p in 0..400 {
        jets.set(4, p / 20, p % 20, 1, (p * 7) as f32 * 0.13);
    }
    write(
        &h5,
        &jets,
        Storage {
            chunk: 1,
            shuffle: false,
            deflate: true,
            f64: false,
        },
    );
    let (off, size) = {
        let f = hdf5::File::open(&h5).unwrap();
        let info = f.dataset("X_jets").unwrap().chunk_info(4).unwrap();
        (info.addr as usize, info.size as usize)
    };
    let mut bytes = std::fs::read(&h5).unwrap();
    bytes[off + size / 2..off + size / 2 + 16].copy_from_slice(&[0xFF; 16]);
    std::fs::write(&h5, &bytes).unwrap();
    for inflate in [Inflate::Workers, Inflate::Library] {
        let out = dir.path().join(format!("out_{inflate:?}"));
        let mut cfg = config(&[&h5], &out, "");
        cfg.engine.inflate = inflate;
        let msg = run(&cfg, &quiet()).unwrap_err().to_string();
        assert!(
            msg.contains("bad.h5: jet 4: cannot read the image dataset"),
            "{inflate:?}: {msg}"
        );
        // Nothing complete-looking is left: no shard of the failed unit was published.
        assert!(
            tree(&out).iter().all(|f| !f.ends_with(".parquet")),
            "{:?}",
            tree(&out)
        );
    }
}
