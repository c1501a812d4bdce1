//! Parquet part files written as batches arrive, in row groups of a set
//! row count, each file hashed while it is written.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::cardinality;

/// How the Parquet files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Zstd,
    Snappy,
    None,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("writing Parquet {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("the Parquet writer thread stopped: {0}")]
    Thread(String),
}

/// How rows are laid out in Parquet: codec, rows per row group, rows per
/// part file. The row group is independent of the Arrow batch the reader
/// hands over: small batches keep the reader's memory low and its data in
/// cache, while the writer gathers them (encoded and compressed, far smaller
/// than the Arrow batch) into row groups of the size readers want.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub codec: Codec,
    pub row_group_rows: usize,
    pub rows_per_file: u64,
}

/// A finished part file, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Part {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Counts and hashes what goes to the file.
struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes batches into `part-NNNNN.parquet` files in `dir`, starting a new
/// part after `rows_per_file` rows.
pub struct PartWriter {
    dir: PathBuf,
    schema: Arc<Schema>,
    layout: Layout,
    /// Chosen from the first batch (see [`cardinality`]), then kept for
    /// every part of the result.
    props: Option<WriterProperties>,
    rows_per_file: u64,
    current: Option<(ArrowWriter<HashingFile>, String, u64)>,
    pub parts: Vec<Part>,
}

impl PartWriter {
    pub fn new(dir: &Path, schema: Arc<Schema>, layout: Layout) -> Self {
        PartWriter {
            dir: dir.to_path_buf(),
            schema,
            layout,
            props: None,
            rows_per_file: layout.rows_per_file.max(1),
            current: None,
            parts: Vec::new(),
        }
    }

    /// The writer's properties; `first` (the result's first batch, if
    /// any) decides which columns get a dictionary.
    fn props(&mut self, first: Option<&RecordBatch>) -> WriterProperties {
        let layout = self.layout;
        self.props
            .get_or_insert_with(|| {
                let compression = match layout.codec {
                    Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
                    Codec::Snappy => Compression::SNAPPY,
                    Codec::None => Compression::UNCOMPRESSED,
                };
                let mut b = WriterProperties::builder()
                    .set_compression(compression)
                    // The writer closes a row group when it holds this many rows.
                    .set_max_row_group_row_count(Some(layout.row_group_rows.max(1)))
                    .set_created_by(
                        concat!("sql-databricks-bridge ", env!("CARGO_PKG_VERSION")).into(),
                    );
                for (name, on) in first
                    .map(cardinality::dictionary_columns)
                    .unwrap_or_default()
                {
                    b = b.set_column_dictionary_enabled(ColumnPath::new(vec![name]), on);
                }
                b.build()
            })
            .clone()
    }

    fn open(&mut self, first: Option<&RecordBatch>) -> Result<(), WriteError> {
        let props = self.props(first);
        let name = format!("part-{:05}.parquet", self.parts.len());
        let path = self.dir.join(&name);
        let file = File::create(&path).map_err(|e| WriteError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let sink = HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let w = ArrowWriter::try_new(sink, self.schema.clone(), Some(props)).map_err(|e| {
            WriteError::Parquet {
                path,
                message: e.to_string(),
            }
        })?;
        self.current = Some((w, name, 0));
        Ok(())
    }

    /// Adds one batch to the current row group, closing it (and starting
    /// another) each time it reaches the layout's row count.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open(Some(batch))?;
        }
        let Some((w, name, rows)) = self.current.as_mut() else {
            return Ok(());
        };
        w.write(batch).map_err(|e| WriteError::Parquet {
            path: self.dir.join(name.as_str()),
            message: e.to_string(),
        })?;
        *rows += batch.num_rows() as u64;
        if *rows >= self.rows_per_file {
            self.close_current()?;
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), WriteError> {
        if let Some((w, name, rows)) = self.current.take() {
            let path = self.dir.join(&name);
            let mut sink = w.into_inner().map_err(|e| WriteError::Parquet {
                path: path.clone(),
                message: e.to_string(),
            })?;
            sink.flush().map_err(|e| WriteError::Io {
                path: path.clone(),
                message: e.to_string(),
            })?;
            sink.file.sync_all().map_err(|e| WriteError::Io {
                path,
                message: e.to_string(),
            })?;
            self.parts.push(Part {
                file: name,
                rows,
                bytes: sink.bytes,
                sha256: format!("{:x}", sink.hasher.finalize()),
            });
        }
        Ok(())
    }

    /// Closes the last part. A result with no rows still gets one (empty)
    /// part, so readers see the schema.
    pub fn finish(mut self) -> Result<Vec<Part>, WriteError> {
        if self.current.is_none() && self.parts.is_empty() {
            self.open(None)?;
        }
        self.close_current()?;
        Ok(self.parts)
    }
}

/// What the reader hands the writer thread.
enum Msg {
    Batch(RecordBatch),
    /// No more rows; the schema gives an empty result its one part.
    Finish(Arc<Schema>),
}

/// A [`PartWriter`] on a thread of its own, so the rows of the next batch
/// are decoded while the previous batch is encoded, compressed and hashed:
/// the two were one thread's work, one after the other.
///
/// Memory: the batch being encoded besides the one the reader is filling.
/// Handing a batch over waits while the thread is busy with the previous
/// one, never longer than encoding it inline would.
pub struct BackgroundWriter {
    tx: Option<std::sync::mpsc::SyncSender<Msg>>,
    done: Option<tokio::sync::oneshot::Receiver<Result<Vec<Part>, WriteError>>>,
    failed: Arc<std::sync::Mutex<Option<WriteError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundWriter {
    pub fn spawn(dir: &Path, layout: Layout) -> Result<Self, WriteError> {
        // A rendezvous: a batch is handed over when the thread is ready for
        // it, so only the batch being encoded is held besides the one being read.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(0);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let failed = Arc::new(std::sync::Mutex::new(None));
        let slot = failed.clone();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("parquet-writer".into())
            .spawn(move || {
                let result = write_all(&rx, &dir, layout);
                if let Err(e) = &result {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(e.clone());
                    }
                }
                // The reader's next hand-over fails only from here on, with
                // the error already in its slot.
                drop(rx);
                let _ = done_tx.send(result);
            })
            .map_err(|e| WriteError::Thread(e.to_string()))?;
        Ok(BackgroundWriter {
            tx: Some(tx),
            done: Some(done),
            failed,
            thread: Some(thread),
        })
    }

    /// The thread's own error once it has stopped.
    fn stopped(&self) -> WriteError {
        self.failed
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or_else(|| WriteError::Thread("it ended before the last batch".into()))
    }

    /// Queues one batch; fails with the thread's error if it has stopped.
    pub fn write(&mut self, batch: RecordBatch) -> Result<(), WriteError> {
        let Some(tx) = &self.tx else {
            return Err(self.stopped());
        };
        tx.send(Msg::Batch(batch)).map_err(|_| self.stopped())
    }

    /// Closes the last part once every batch handed over is written.
    pub async fn finish(mut self, schema: Arc<Schema>) -> Result<Vec<Part>, WriteError> {
        let sent = match self.tx.take() {
            Some(tx) => tx.send(Msg::Finish(schema)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped());
        }
        let done = self.done.take();
        match done {
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err(WriteError::Thread("it ended without an answer".into()))),
            None => Err(self.stopped()),
        }
    }
}

impl Drop for BackgroundWriter {
    /// An abandoned run (an error, a cancelled job) waits for the thread to
    /// stop, so no file is written into the run's directory after it is
    /// cleaned up or reused by a retry.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread's loop: batches until `Finish`; a closed channel
/// without it (the run was abandoned) leaves the last part unfinished.
fn write_all(
    rx: &std::sync::mpsc::Receiver<Msg>,
    dir: &Path,
    layout: Layout,
) -> Result<Vec<Part>, WriteError> {
    let mut writer: Option<PartWriter> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch(b) => writer
                .get_or_insert_with(|| PartWriter::new(dir, b.schema(), layout))
                .write(&b)?,
            Msg::Finish(schema) => {
                return writer
                    .unwrap_or_else(|| PartWriter::new(dir, schema, layout))
                    .finish();
            }
        }
    }
    Err(WriteError::Thread("the run was abandoned".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int32Array;
    use arrow_schema::{DataType, Field};

    fn batch(n: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from_iter_values(0..n))]).unwrap()
    }

    fn layout(row_group_rows: usize, rows_per_file: u64) -> Layout {
        Layout {
            codec: Codec::Snappy,
            row_group_rows,
            rows_per_file,
        }
    }

    #[test]
    fn small_batches_are_gathered_into_row_groups_of_the_layouts_size() {
        let dir = std::env::temp_dir().join(format!("row-groups-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = PartWriter::new(&dir, batch(1).schema(), layout(10, 1_000));
        for _ in 0..7 {
            w.write(&batch(4)).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.len(), 1);
        let file = File::open(dir.join(&parts[0].file)).unwrap();
        let meta = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        let groups: Vec<i64> = parquet::file::reader::FileReader::metadata(&meta)
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, [10, 10, 8]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_columns_whose_values_repeat_get_a_dictionary() {
        let dir = std::env::temp_dir().join(format!("dictionary-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("pais", DataType::Int32, false),
            Field::new("id", DataType::Int32, false),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter_values((0..1000).map(|i| i % 3))),
                Arc::new(Int32Array::from_iter_values(0..1000)),
            ],
        )
        .unwrap();
        let mut w = PartWriter::new(&dir, schema, layout(10_000, 10_000));
        w.write(&b).unwrap();
        let parts = w.finish().unwrap();
        let file = File::open(dir.join(&parts[0].file)).unwrap();
        let meta = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        let group = parquet::file::reader::FileReader::metadata(&meta)
            .row_group(0)
            .clone();
        let dict = |i: usize| group.column(i).dictionary_page_offset().is_some();
        assert!(dict(0), "the repeated column has a dictionary");
        assert!(!dict(1), "the unique column has none");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_threads_error_reaches_the_reader_with_the_file_named() {
        let dir = std::env::temp_dir().join(format!("no-such-dir-{}", uuid::Uuid::new_v4()));
        let mut w = BackgroundWriter::spawn(&dir, layout(4, 10)).unwrap();
        // The first hand-over may be accepted before the thread fails;
        // the failure shows on a later one or at the end.
        let e = match w.write(batch(5)) {
            Err(e) => e,
            Ok(()) => match w.write(batch(5)) {
                Err(e) => e,
                Ok(()) => w.finish(batch(1).schema()).await.unwrap_err(),
            },
        };
        assert!(e.to_string().contains("part-00000.parquet"), "{e}");
    }

    #[tokio::test]
    async fn parts_split_by_rows_and_an_abandoned_run_stops_writing() {
        let dir = std::env::temp_dir().join(format!("bg-writer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = BackgroundWriter::spawn(&dir, layout(4, 10)).unwrap();
        for _ in 0..3 {
            w.write(batch(6)).unwrap();
        }
        let parts = w.finish(batch(1).schema()).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.rows).collect::<Vec<_>>(), [12, 6]);

        let sub = dir.join("abandoned");
        std::fs::create_dir_all(&sub).unwrap();
        let mut w = BackgroundWriter::spawn(&sub, layout(4, 1_000)).unwrap();
        w.write(batch(6)).unwrap();
        drop(w);
        // The thread has stopped: the directory can go and stays gone.
        std::fs::remove_dir_all(&sub).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!sub.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
