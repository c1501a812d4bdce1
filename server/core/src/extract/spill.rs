//! One query's rows kept in memory while they are few, spilled to Parquet
//! parts once they pass a size: what a caller that cannot know the result's
//! size in advance needs (Spark: a small result goes to the driver as Arrow,
//! a large one is read back from files by the executors).

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use super::writer::PartWriter;
use super::{io_err, stream_result, ExtractError, ExtractOptions, Landing, Outcome, RemoveOnDrop};
use crate::sqlserver::Connection;

/// Where a spilling extraction's rows ended up.
#[derive(Debug)]
pub enum Landed {
    /// The whole result, at most the memory limit of Arrow buffers.
    Memory {
        schema: Arc<Schema>,
        batches: Vec<RecordBatch>,
    },
    /// Parts and `_manifest.json` in the directory given (the batches held
    /// when the limit was passed are its first row groups).
    Files(Box<Outcome>),
}

enum State {
    Memory {
        batches: Vec<RecordBatch>,
        bytes: usize,
    },
    Files(Box<PartWriter>),
}

/// Runs `sql`; keeps the batches while their Arrow buffers total at most
/// `memory_limit` bytes, else writes every batch as Parquet parts straight
/// into `dir` (created; it must not exist), manifest last. No rename, so
/// `dir` may be on a FUSE mount (a Unity Catalog Volume on a cluster); it is
/// removed if the run fails or is dropped.
pub async fn extract_spilling(
    conn: &mut Connection,
    sql: &str,
    dir: &Path,
    opts: &ExtractOptions,
    memory_limit: usize,
) -> Result<Landed, ExtractError> {
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    if dir.exists() {
        return Err(ExtractError::Exists(dir.to_path_buf()));
    }
    let mut guard: Option<RemoveOnDrop> = None;
    let mut state = State::Memory {
        batches: vec![],
        bytes: 0,
    };
    let reader = stream_result(conn, sql, opts.batch_rows, &mut |b, _| {
        match &mut state {
            State::Files(w) => w.write(&b)?,
            State::Memory { batches, bytes } => {
                *bytes += b.get_array_memory_size();
                batches.push(b);
                if *bytes > memory_limit {
                    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
                    guard = Some(RemoveOnDrop::new(dir.to_path_buf()));
                    let mut w = PartWriter::new(dir, batches[0].schema(), opts.layout());
                    for held in batches.drain(..) {
                        w.write(&held)?;
                    }
                    state = State::Files(Box::new(w));
                }
            }
        }
        Ok(())
    })
    .await?;
    let schema = reader.schema().ok_or(ExtractError::NoResult)?;
    match state {
        State::Memory { mut batches, .. } => {
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(schema.clone()));
            }
            Ok(Landed::Memory { schema, batches })
        }
        State::Files(w) => {
            let landing = Landing {
                query: dir.file_name().and_then(|n| n.to_str()).unwrap_or("query"),
                country: "",
                sql,
                cols: reader.columns(),
                types: reader.type_source().clone(),
                parts: (*w).finish()?,
                rows_read: reader.rows(),
                started_at,
            };
            let outcome = landing.write_manifest(dir, opts)?;
            if let Some(g) = guard {
                g.disarm();
            }
            Ok(Landed::Files(Box::new(Outcome {
                seconds: started.elapsed().as_secs_f64(),
                ..outcome
            })))
        }
    }
}
