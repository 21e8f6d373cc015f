//! What travels between stages: a batch of jets as images going in, as Arrow record batches
//! coming out. Every batch carries its sequence number so the sink can restore input order.

use arrow::record_batch::RecordBatch;

/// A contiguous range of jets of one file, as read, with its place in the run.
pub struct ImageBatch {
    /// Position of this batch in the run; the sink writes batches in this order.
    pub seq: u64,
    /// Work unit (shard number) this batch belongs to.
    pub unit: u32,
    /// Whether this is the unit's last batch (the sink then closes the unit's shards).
    pub last_in_unit: bool,
    /// Index of the file in the run's file list.
    pub file: usize,
    /// Index in the file of the first jet.
    pub start: u64,
    /// Number of jets.
    pub n: usize,
    /// The jets' images and scalars.
    pub raw: crate::source::RawJets,
}

/// A jet left out of the output, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// Input file path.
    pub file: String,
    /// Jet index in that file.
    pub index: u64,
    /// Human-readable reason.
    pub reason: String,
}

/// The converted batch: one record batch per output table.
pub struct JetTables {
    /// Same as the input batch.
    pub seq: u64,
    /// Same as the input batch.
    pub unit: u32,
    /// Same as the input batch.
    pub last_in_unit: bool,
    /// Jets in (before rejections).
    pub jets_in: usize,
    /// One row per kept jet.
    pub jets: RecordBatch,
    /// One record batch per resolution, in config order.
    pub points: Vec<RecordBatch>,
    /// Jets left out by `on_invalid: skip_jet`.
    pub rejected: Vec<Rejection>,
    /// Pixel values set to zero by `on_invalid: zero`.
    pub zeroed_values: u64,
}
