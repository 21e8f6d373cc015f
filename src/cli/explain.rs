//! `pipeline explain`: the stage plan and the Arrow schema of every output table.

use crate::config::LoadedConfig;
use crate::error::Result;
use crate::store::tables::{jets_schema, points_schema, type_name};
use arrow::datatypes::Schema;

fn print_schema(title: &str, schema: &Schema) {
    println!("\n{title}");
    for f in schema.fields() {
        println!(
            "  {:<18} {:<16} {:<9} {}",
            f.name(),
            type_name(f.data_type()),
            if f.is_nullable() { "nullable" } else { "" },
            f.metadata().get("description").map_or("", |s| s.as_str())
        );
    }
}

/// Prints the plan. Does not open the input files.
pub fn explain(loaded: &LoadedConfig) -> Result<()> {
    let cfg = &loaded.config;
    let pc = &cfg.stages.pointcloud;
    let ds = &cfg.source.datasets;
    println!("pipeline {} ({})", cfg.name, cfg.content_hash());
    println!("\nplan");
    println!(
        "  1. source hdf5      files {:?}; images `{}` ({:?}, channels {:?}); pt {:?}, m0 {:?}, label {:?}; offset {}, limit {:?}; on_invalid {:?}",
        cfg.source.files,
        ds.images,
        cfg.source.layout,
        cfg.source.channels,
        ds.pt,
        ds.m0,
        ds.label,
        cfg.source.offset,
        cfg.source.limit,
        cfg.source.on_invalid
    );
    println!(
        "  2. pointcloud       pixel is a point when any channel > {}; rank by {:?} desc, ties by a hash of the pixel index; keep top {:?}; pixel size {} (rows = {:?})",
        pc.threshold, pc.rank_by, pc.resolutions, pc.pixel_size, pc.row_axis
    );
    match &cfg.stages.knn {
        Some(k) => println!(
            "  3. knn              k = {} nearest by (distance, index) in ({}){}{}; per jet and resolution, with graph statistics",
            k.k,
            k.coordinates.join(", "),
            k.scales
                .as_ref()
                .map_or(String::new(), |s| format!(" scaled by {s:?}")),
            if k.include_self {
                ", self included"
            } else {
                ""
            }
        ),
        None => println!("  3. knn              off"),
    }
    println!(
        "  4. sink parquet     {}/ — units of {} jets, row groups of {}, zstd level {}",
        cfg.sink.path.display(),
        cfg.sink.shard_size,
        cfg.sink.row_group_size,
        cfg.sink.zstd_level
    );
    println!(
        "  engine              {} worker and {} writer thread(s), batches of {} jets, queue depth {}",
        cfg.worker_threads(),
        cfg.writer_threads(),
        cfg.engine.batch_size,
        cfg.engine.queue_depth
    );
    print_schema("table jets — jets/part-NNNNN.parquet", &jets_schema(cfg));
    let parts: Vec<String> = pc.resolutions.iter().map(|r| format!("res={r}")).collect();
    print_schema(
        &format!(
            "table points — points/{{{}}}/part-NNNNN.parquet",
            parts.join(",")
        ),
        &points_schema(cfg),
    );
    Ok(())
}
