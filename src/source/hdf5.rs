//! HDF5 jet-image source: opens every input file up front, checks datasets, shapes and
//! dtypes, and reads contiguous ranges of jets on demand.
//!
//! Images may be float32 or float64 (HDF5 converts to float32 on read), NHWC or NCHW, of any
//! size and channel count. Scalars (`pt`, `m0`, label) are optional, shape (N,) or (N, 1).
//! Memory use is one batch: nothing reads a whole dataset.

use super::chunks::{ChunkIndex, CompressedJets};
use crate::config::{Layout, SourceConfig};
use crate::error::{Error, Result};
use hdf5::types::TypeDescriptor;
use ndarray::s;
use std::path::{Path, PathBuf};

/// Image size and memory layout, identical for every file of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGeometry {
    /// Rows (η by default).
    pub height: usize,
    /// Columns (φ by default).
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Axis order in the file.
    pub layout: Layout,
}

impl ImageGeometry {
    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }
    /// f32 values per image.
    pub fn values_per_jet(&self) -> usize {
        self.pixels() * self.channels
    }
    /// (stride between pixels, stride between channels) in the flat image.
    pub fn strides(&self) -> (usize, usize) {
        match self.layout {
            Layout::Nhwc => (self.channels, 1),
            Layout::Nchw => (1, self.pixels()),
        }
    }
}

/// A scalar per-jet dataset and whether it is stored as (N, 1).
struct Scalar {
    name: String,
    dataset: hdf5::Dataset,
    column: bool,
}

/// One opened input file.
pub struct SourceFile {
    /// Path as matched from the config.
    pub path: PathBuf,
    /// Size in bytes when opened.
    pub size_bytes: u64,
    /// Modification time when opened, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// Jets (first dimension of the image dataset).
    pub n_jets: u64,
    /// The image dataset's element type, e.g. `float32`.
    pub image_dtype: &'static str,
    images: hdf5::Dataset,
    pt: Option<Scalar>,
    m0: Option<Scalar>,
    label: Option<Scalar>,
    /// Direct chunk reads, when the image dataset qualifies.
    direct: Option<ChunkIndex>,
}

/// A contiguous range of jets as read from one file.
pub struct RawJets {
    /// `n × values_per_jet` image values in file layout; empty when `compressed` is set.
    pub images: Vec<f32>,
    /// The images as stored (gzip chunks), to be inflated by the worker (direct reads).
    pub compressed: Option<CompressedJets>,
    /// Jet pT per jet, when the file has it.
    pub pt: Option<Vec<f32>>,
    /// Jet mass per jet, when the file has it.
    pub m0: Option<Vec<f32>>,
    /// Raw label values per jet (checked against the allowed set later).
    pub label: Option<Vec<f32>>,
}

/// All input files of a run, opened and checked.
pub struct Hdf5Source {
    /// Files in run order.
    pub files: Vec<SourceFile>,
    /// Shared image geometry.
    pub geometry: ImageGeometry,
}

/// Expands the config's file patterns: each pattern's matches sorted, patterns in order,
/// duplicates removed. A pattern that matches nothing is an error.
pub fn expand_files(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern)
            .map_err(|e| Error::source(pattern, format!("invalid file pattern: {e}")))?;
        let mut matched: Vec<PathBuf> = paths.filter_map(|p| p.ok()).collect();
        if matched.is_empty() {
            return Err(Error::source(
                pattern,
                "input file not found (no file matches this path or pattern)",
            ));
        }
        matched.sort();
        for p in matched {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Modification time of a file in nanoseconds since the Unix epoch (0 if unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn dtype_name(ds: &hdf5::Dataset) -> std::result::Result<TypeDescriptor, hdf5::Error> {
    ds.dtype()?.to_descriptor()
}

fn open_dataset(file: &hdf5::File, path: &Path, name: &str) -> Result<hdf5::Dataset> {
    if !file.link_exists(name) {
        let present = file.member_names().unwrap_or_default().join(", ");
        return Err(Error::source(
            path,
            format!("dataset `{name}` not found (the file has: {present})"),
        ));
    }
    file.dataset(name)
        .map_err(|e| Error::source(path, format!("`{name}` is not a readable dataset: {e}")))
}

fn open_scalar(
    file: &hdf5::File,
    path: &Path,
    name: &Option<String>,
    n_jets: u64,
    images: &str,
) -> Result<Option<Scalar>> {
    let Some(name) = name else { return Ok(None) };
    let dataset = open_dataset(file, path, name)?;
    let shape = dataset.shape();
    let column = match shape.as_slice() {
        [_] => false,
        [_, 1] => true,
        _ => {
            return Err(Error::source(
                path,
                format!("dataset `{name}` has shape {shape:?}, expected (N,) or (N, 1)"),
            ));
        }
    };
    match dtype_name(&dataset) {
        Ok(TypeDescriptor::Float(_) | TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => {
        }
        other => {
            return Err(Error::source(
                path,
                format!("dataset `{name}` has type {other:?}, expected a number per jet"),
            ));
        }
    }
    if shape[0] as u64 != n_jets {
        return Err(Error::source(
            path,
            format!(
                "dataset `{name}` has {} entries but `{images}` has {n_jets} jets",
                shape[0]
            ),
        ));
    }
    Ok(Some(Scalar {
        name: name.clone(),
        dataset,
        column,
    }))
}

fn geometry_of(shape: &[usize], layout: Layout) -> ImageGeometry {
    let (height, width, channels) = match layout {
        Layout::Nhwc => (shape[1], shape[2], shape[3]),
        Layout::Nchw => (shape[2], shape[3], shape[1]),
    };
    ImageGeometry {
        height,
        width,
        channels,
        layout,
    }
}

/// Opens a source read-only without HDF5's file lock: jetpipe never writes sources, and the
/// lock fails on shared filesystems and wherever another process holds the file open for
/// writing, including a child process that inherited a writer's descriptor (HDF5 opens
/// without `O_CLOEXEC`), which made a test fail with "unable to lock file, errno = 11".
pub fn open_read_only(path: &Path) -> Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false))
        .open(path)
        .map_err(|e| Error::source(path, format!("cannot open as HDF5: {e}")))
}

impl SourceFile {
    fn open(path: &Path, cfg: &SourceConfig) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let file = open_read_only(path)?;
        let names = &cfg.datasets;
        let images = open_dataset(&file, path, &names.images)?;
        let shape = images.shape();
        if shape.len() != 4 {
            let axes = match cfg.layout {
                Layout::Nhwc => "(jets, rows, columns, channels)",
                Layout::Nchw => "(jets, channels, rows, columns)",
            };
            return Err(Error::source(
                path,
                format!(
                    "dataset `{}` has shape {shape:?}, expected rank 4 {axes}",
                    names.images
                ),
            ));
        }
        let image_dtype = match dtype_name(&images) {
            Ok(TypeDescriptor::Float(hdf5::types::FloatSize::U4)) => "float32",
            Ok(TypeDescriptor::Float(hdf5::types::FloatSize::U8)) => "float64",
            other => {
                return Err(Error::source(
                    path,
                    format!(
                        "dataset `{}` has type {other:?}, expected float32 or float64",
                        names.images
                    ),
                ));
            }
        };
        let geometry = geometry_of(&shape, cfg.layout);
        if geometry.height > 65536 || geometry.width > 65536 || shape[0] as u64 >= 1 << 32 {
            return Err(Error::source(
                path,
                format!(
                    "dataset `{}` has shape {shape:?}: at most 2^32 - 1 jets and 65536 rows and columns are supported",
                    names.images
                ),
            ));
        }
        if geometry.channels != cfg.channels.len() {
            return Err(Error::source(
                path,
                format!(
                    "dataset `{}` (shape {shape:?}, layout {:?}) has {} channels but the config names {} ({})",
                    names.images,
                    cfg.layout,
                    geometry.channels,
                    cfg.channels.len(),
                    cfg.channels.join(", ")
                ),
            ));
        }
        let n_jets = shape[0] as u64;
        let scalar = |name: &Option<String>| open_scalar(&file, path, name, n_jets, &names.images);
        Ok(Self {
            path: path.to_path_buf(),
            size_bytes: meta.len(),
            mtime_ns: mtime_ns(&meta),
            n_jets,
            image_dtype,
            pt: scalar(&names.pt)?,
            m0: scalar(&names.m0)?,
            label: scalar(&names.label)?,
            direct: ChunkIndex::build(path, &file, &images),
            images,
        })
    }

    fn read_images(&self, start: u64, n: usize) -> hdf5::Result<Vec<f32>> {
        let (a, b) = (start as usize, start as usize + n);
        let arr = self
            .images
            .read_slice::<f32, _, ndarray::Ix4>(s![a..b, .., .., ..])?;
        Ok(arr.into_raw_vec_and_offset().0)
    }

    fn read_scalar(
        &self,
        scalar: &Option<Scalar>,
        start: u64,
        n: usize,
    ) -> Result<Option<Vec<f32>>> {
        let Some(sc) = scalar else { return Ok(None) };
        let (a, b) = (start as usize, start as usize + n);
        let values = if sc.column {
            sc.dataset
                .read_slice::<f32, _, ndarray::Ix2>(s![a..b, ..])
                .map(|v| v.into_raw_vec_and_offset().0)
        } else {
            sc.dataset
                .read_slice::<f32, _, ndarray::Ix1>(s![a..b])
                .map(|v| v.into_raw_vec_and_offset().0)
        };
        values.map(Some).map_err(|e| {
            Error::source(
                &self.path,
                format!("cannot read `{}` for jets {a}..{b}: {e}", sc.name),
            )
        })
    }

    /// Whether images can be read as compressed chunks and inflated by the caller.
    pub fn direct_read(&self) -> bool {
        self.direct.is_some()
    }

    /// Reads jets `start .. start + n`, the images as stored (to be inflated by the worker)
    /// when `direct` is set and the dataset allows it, decoded by the library otherwise.
    pub fn read_for_workers(&self, start: u64, n: usize, direct: bool) -> Result<RawJets> {
        let Some(index) = self.direct.as_ref().filter(|_| direct && n > 0) else {
            return self.read(start, n);
        };
        let compressed = index.read(start, n).map_err(|e| {
            Error::source(
                &self.path,
                format!(
                    "cannot read the image chunks of jets {start}..{}: {e}",
                    start + n as u64
                ),
            )
        })?;
        Ok(RawJets {
            images: Vec::new(),
            compressed: Some(compressed),
            pt: self.read_scalar(&self.pt, start, n)?,
            m0: self.read_scalar(&self.m0, start, n)?,
            label: self.read_scalar(&self.label, start, n)?,
        })
    }

    /// Reads jets `start .. start + n`. A failing image read is narrowed down to the first
    /// jet that cannot be read, so the error names it.
    pub fn read(&self, start: u64, n: usize) -> Result<RawJets> {
        let images = match self.read_images(start, n) {
            Ok(v) => v,
            Err(batch_err) => {
                for j in start..start + n as u64 {
                    if let Err(e) = self.read_images(j, 1) {
                        return Err(Error::Jet {
                            file: self.path.clone(),
                            index: j,
                            msg: format!("cannot read the image dataset: {e}"),
                        });
                    }
                }
                return Err(Error::source(
                    &self.path,
                    format!(
                        "cannot read jets {start}..{}: {batch_err}",
                        start + n as u64
                    ),
                ));
            }
        };
        Ok(RawJets {
            images,
            compressed: None,
            pt: self.read_scalar(&self.pt, start, n)?,
            m0: self.read_scalar(&self.m0, start, n)?,
            label: self.read_scalar(&self.label, start, n)?,
        })
    }

    /// Compression filters and chunk shape of the image dataset, for `inspect`.
    pub fn storage_description(&self) -> String {
        let chunk = self
            .images
            .chunk()
            .map_or("contiguous".to_string(), |c| format!("chunks {c:?}"));
        let filters: Vec<String> = self
            .images
            .filters()
            .iter()
            .map(|f| format!("{f:?}"))
            .collect();
        let direct = if self.direct.is_some() {
            "; direct chunk reads (parallel inflate)"
        } else {
            ""
        };
        if filters.is_empty() {
            format!("{chunk}{direct}")
        } else {
            format!("{chunk}, filters {}{direct}", filters.join(" + "))
        }
    }
}

impl Hdf5Source {
    /// Opens and checks every file the config names.
    pub fn open(cfg: &SourceConfig) -> Result<Self> {
        let paths = expand_files(&cfg.files)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut geometry: Option<ImageGeometry> = None;
        for path in &paths {
            let f = SourceFile::open(path, cfg)?;
            let g = geometry_of(&f.images.shape(), cfg.layout);
            match geometry {
                None => geometry = Some(g),
                Some(first) if first != g => {
                    return Err(Error::source(
                        path,
                        format!(
                            "images are {}×{}×{} but {} has {}×{}×{}: all files of a run must agree",
                            g.height,
                            g.width,
                            g.channels,
                            paths[0].display(),
                            first.height,
                            first.width,
                            first.channels
                        ),
                    ));
                }
                Some(_) => {}
            }
            files.push(f);
        }
        Ok(Self {
            files,
            geometry: geometry.expect("at least one file"),
        })
    }
}
