//! `pipeline sql`: run SQL over one or more datasets and print or save the result.

use crate::error::{Error, Result};
use crate::sql::{DatasetRef, Sql, default_dataset};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use std::io::Write;
use std::path::PathBuf;

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A pretty table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// Parquet (needs --output).
    Parquet,
}

/// Arguments of `pipeline sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT label, count(*) FROM jets GROUP BY label".
    #[arg(required_unless_present = "schema")]
    pub query: Option<String>,
    /// A dataset directory, or NAME=DIR to register its tables as NAME_jets, NAME_points.
    /// Repeatable. Default: the current directory.
    #[arg(long = "dataset", short = 'd')]
    pub datasets: Vec<DatasetRef>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// List the tables and their columns with descriptions, and exit.
    #[arg(long)]
    pub schema: bool,
}

/// Runs the command.
pub fn sql(args: SqlArgs) -> Result<()> {
    let datasets = if args.datasets.is_empty() {
        vec![default_dataset()]
    } else {
        args.datasets
    };
    let session = Sql::open(&datasets)?;
    for w in &session.warnings {
        eprintln!("warning: {w}");
    }
    if args.schema {
        let mut text = String::new();
        for (name, doc) in &session.tables {
            text += &format!("{name} (one row = {})\n", doc.row);
            for c in &doc.columns {
                text += &format!("  {:<18} {:<16} {}\n", c.name, c.data_type, c.description);
            }
            if let Some(p) = &doc.partitioned_by {
                text += &format!(
                    "  {p:<18} {:<16} Hive partition column: the resolution\n",
                    "int32"
                );
            }
        }
        return emit(text.into_bytes(), None);
    }
    let (schema, batches) = session.query(args.query.as_deref().unwrap_or_default())?;
    let bytes = render(args.format, &schema, &batches, args.output.is_some())?;
    emit(bytes, args.output)
}

/// Writes to the file, or to standard output (a closed pipe, as with `| head`, is not an error).
fn emit(bytes: Vec<u8>, target: Option<PathBuf>) -> Result<()> {
    match target {
        Some(path) => std::fs::write(&path, bytes).map_err(|e| Error::io(path, e)),
        None => match std::io::stdout().write_all(&bytes) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("stdout", e)),
            _ => Ok(()),
        },
    }
}

/// Encodes a result in `format`.
pub fn render(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    to_file: bool,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Table => {
            let t = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            out = format!("{t}\n").into_bytes();
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            out.push(b'\n');
        }
        Format::Parquet => {
            if !to_file {
                return Err(Error::Config("--format parquet needs --output FILE".into()));
            }
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    Ok(out)
}
