//! Parquet part files, one row group per batch as batches arrive, each file
//! hashed while it is written.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

/// How the Parquet files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("writing Parquet {path}: {message}")]
    Parquet { path: PathBuf, message: String },
}

/// A finished part file, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    props: WriterProperties,
    rows_per_file: u64,
    current: Option<(ArrowWriter<HashingFile>, String, u64)>,
    pub parts: Vec<Part>,
}

impl PartWriter {
    pub fn new(dir: &Path, schema: Arc<Schema>, codec: Codec, rows_per_file: u64) -> Self {
        let compression = match codec {
            Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        PartWriter {
            dir: dir.to_path_buf(),
            schema,
            props: WriterProperties::builder()
                .set_compression(compression)
                .set_created_by(concat!("sql-databricks-bridge ", env!("CARGO_PKG_VERSION")).into())
                .build(),
            rows_per_file: rows_per_file.max(1),
            current: None,
            parts: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<(), WriteError> {
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
        let w = ArrowWriter::try_new(sink, self.schema.clone(), Some(self.props.clone())).map_err(
            |e| WriteError::Parquet {
                path,
                message: e.to_string(),
            },
        )?;
        self.current = Some((w, name, 0));
        Ok(())
    }

    /// Writes one batch as (at least) one row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open()?;
        }
        let Some((w, name, rows)) = self.current.as_mut() else {
            return Ok(());
        };
        w.write(batch).map_err(|e| WriteError::Parquet {
            path: self.dir.join(name.as_str()),
            message: e.to_string(),
        })?;
        // One row group per batch keeps memory bounded by the batch size.
        w.flush().map_err(|e| WriteError::Parquet {
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
            self.open()?;
        }
        self.close_current()?;
        Ok(self.parts)
    }
}
