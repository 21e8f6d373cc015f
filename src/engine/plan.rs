//! The run plan: which jets of which file form each work unit, and the batches of each unit.
//!
//! `offset`/`limit` select a window of the concatenated input. Units never straddle files and
//! hold `shard_size` jets (the last of a file may hold fewer); batches never straddle units.

/// A work unit: jets `start..end` of one file, written as one shard per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Unit number = shard number.
    pub id: u32,
    /// Index of the file in the run.
    pub file: usize,
    /// First jet index in the file.
    pub start: u64,
    /// One past the last jet index.
    pub end: u64,
}

/// A batch to read: jets `start..start + n` of `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpec {
    /// Sequence number in the run.
    pub seq: u64,
    /// Unit the batch belongs to.
    pub unit: u32,
    /// Whether it is the unit's last batch.
    pub last_in_unit: bool,
    /// File index.
    pub file: usize,
    /// First jet index in the file.
    pub start: u64,
    /// Jets.
    pub n: usize,
}

/// Cuts the selected window of the input into units.
pub fn plan_units(
    jets_per_file: &[u64],
    offset: u64,
    limit: Option<u64>,
    shard_size: u64,
) -> Vec<Unit> {
    let sel_end = limit.map_or(u64::MAX, |l| offset.saturating_add(l));
    let mut units = Vec::new();
    let mut file_begin = 0u64;
    for (file, &n) in jets_per_file.iter().enumerate() {
        let file_end = file_begin + n;
        let a = offset.max(file_begin);
        let b = sel_end.min(file_end);
        let mut start = a;
        while start < b {
            let end = start.saturating_add(shard_size).min(b);
            units.push(Unit {
                id: units.len() as u32,
                file,
                start: start - file_begin,
                end: end - file_begin,
            });
            start = end;
        }
        file_begin = file_end;
    }
    units
}

/// Cuts units into batches of at most `batch_size` jets.
pub fn plan_batches(units: &[Unit], batch_size: u64) -> Vec<BatchSpec> {
    let mut out = Vec::new();
    for u in units {
        let mut start = u.start;
        while start < u.end {
            let end = start.saturating_add(batch_size).min(u.end);
            out.push(BatchSpec {
                seq: out.len() as u64,
                unit: u.id,
                last_in_unit: end == u.end,
                file: u.file,
                start,
                n: (end - start) as usize,
            });
            start = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_respect_files_window_and_size() {
        let u = plan_units(&[10, 5], 3, Some(10), 4);
        let got: Vec<_> = u.iter().map(|u| (u.id, u.file, u.start, u.end)).collect();
        assert_eq!(got, [(0, 0, 3, 7), (1, 0, 7, 10), (2, 1, 0, 3)]);
        assert_eq!(plan_units(&[10], 20, None, 4), []);
        assert_eq!(plan_units(&[0, 3], 0, None, 4).len(), 1);
    }

    #[test]
    fn batches_cover_units_exactly() {
        let units = plan_units(&[1000, 77], 0, None, 300);
        let batches = plan_batches(&units, 64);
        let total: usize = batches.iter().map(|b| b.n).sum();
        assert_eq!(total, 1077);
        for u in &units {
            let bs: Vec<_> = batches.iter().filter(|b| b.unit == u.id).collect();
            assert_eq!(bs.first().unwrap().start, u.start);
            assert_eq!(bs.iter().filter(|b| b.last_in_unit).count(), 1);
            assert!(bs.last().unwrap().last_in_unit);
            assert_eq!(bs.iter().map(|b| b.n as u64).sum::<u64>(), u.end - u.start);
        }
        assert!(batches.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
}
