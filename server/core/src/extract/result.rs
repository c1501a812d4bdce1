//! One query's result, read from the driver's stream into Arrow batches.
//!
//! Column types come from `sp_describe_first_result_set` when SQL Server
//! can describe the batch (it knows precision, scale and length). When it
//! cannot — a temp table the batch fills, dynamic SQL in a procedure, an
//! older or compatible server without that procedure — they come from the
//! result's own metadata (COLMETADATA), which the driver exposes without
//! precision and scale: a decimal then takes the scale its values carry, as
//! DECIMAL(38, s), and `time` keeps seven fractional digits.
//!
//! The rule when the described type and the type the server sends disagree:
//! the column is widened to a type that holds every value of both (a wider
//! integer, float for real, DECIMAL(38, s) for a decimal or an integer) and
//! the widening is recorded in the manifest; any other disagreement fails
//! naming the column and both types. No value is ever rounded silently.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use tiberius::{Column, ColumnData, ColumnType, QueryItem, Row};

use super::batch::{BatchBuilder, BatchError};
use crate::types::to_parquet::{arrow_schema, target, SchemaError, SourceColumn, Target};

/// The scale a decimal column takes when its type was not described and the
/// first batch of rows held only NULLs in it.
pub const FALLBACK_SCALE: u8 = 18;

/// Where a result's column types came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TypeSource {
    /// `sp_describe_first_result_set` or `result_metadata`.
    pub from: &'static str,
    /// Why the description was not used, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Columns widened because the server sent another type than described.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub widened: Vec<Widening>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Widening {
    pub column: String,
    pub described: String,
    pub sent: String,
    pub written: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("column '{column}': the server sent {sent} where {described} was described")]
    Mismatch {
        column: String,
        described: String,
        sent: String,
    },
    #[error("the query returns {described} columns by its description but {sent} in its result")]
    Width { described: usize, sent: usize },
    #[error("the query returns more than one result set (the second has columns {0}); extract one result set per query")]
    SecondResult(String),
}

/// The T-SQL type name a result column's driver type stands for, when its
/// type was not described.
fn type_name_of(t: ColumnType) -> Option<&'static str> {
    Some(match t {
        ColumnType::Bit | ColumnType::Bitn => "bit",
        ColumnType::Int1 => "tinyint",
        ColumnType::Int2 => "smallint",
        ColumnType::Int4 => "int",
        ColumnType::Int8 | ColumnType::Intn => "bigint",
        ColumnType::Float4 => "real",
        ColumnType::Float8 | ColumnType::Floatn => "float",
        ColumnType::Money => "money",
        ColumnType::Money4 => "smallmoney",
        ColumnType::Decimaln | ColumnType::Numericn => "decimal",
        ColumnType::Datetime | ColumnType::Datetimen => "datetime",
        ColumnType::Datetime4 => "smalldatetime",
        ColumnType::Datetime2 => "datetime2",
        ColumnType::Daten => "date",
        ColumnType::Timen => "time",
        ColumnType::DatetimeOffsetn => "datetimeoffset",
        ColumnType::Guid => "uniqueidentifier",
        ColumnType::BigVarChar | ColumnType::BigChar | ColumnType::Text => "varchar",
        ColumnType::NVarchar | ColumnType::NChar | ColumnType::NText => "nvarchar",
        ColumnType::Xml => "xml",
        ColumnType::BigVarBin | ColumnType::BigBinary | ColumnType::Image => "varbinary",
        _ => return None,
    })
}

/// Whether a described target takes the values of a sent driver type as they are.
fn accepts(t: &Target, sent: ColumnType) -> bool {
    use ColumnType as C;
    match t {
        Target::Boolean => matches!(sent, C::Bit | C::Bitn),
        Target::Int16 => matches!(sent, C::Int1 | C::Int2),
        Target::Int32 => matches!(sent, C::Int4),
        Target::Int64 => matches!(sent, C::Int8),
        Target::Float32 => matches!(sent, C::Float4),
        Target::Float64 => matches!(sent, C::Float4 | C::Float8 | C::Floatn),
        Target::Decimal { .. } => matches!(sent, C::Decimaln | C::Numericn),
        Target::Money { .. } => matches!(sent, C::Money | C::Money4 | C::Decimaln | C::Numericn),
        Target::Utf8 => matches!(
            sent,
            C::BigVarChar | C::BigChar | C::Text | C::NVarchar | C::NChar | C::NText | C::Xml
        ),
        Target::Time { .. } => matches!(sent, C::Timen),
        Target::Guid => matches!(sent, C::Guid),
        Target::Binary => matches!(sent, C::BigVarBin | C::BigBinary | C::Image),
        Target::Date => matches!(sent, C::Daten),
        Target::Timestamp => matches!(
            sent,
            C::Datetime | C::Datetimen | C::Datetime4 | C::Datetime2
        ),
        Target::TimestampUtc => matches!(sent, C::DatetimeOffsetn),
    }
}

fn int_rank(t: &Target) -> Option<u8> {
    match t {
        Target::Int16 => Some(1),
        Target::Int32 => Some(2),
        Target::Int64 => Some(3),
        _ => None,
    }
}

/// A target holding every value of both the described target and the sent type.
fn widened(t: &Target, sent: ColumnType) -> Option<Target> {
    use ColumnType as C;
    let sent_int = match sent {
        C::Int1 | C::Int2 => Some(Target::Int16),
        C::Int4 => Some(Target::Int32),
        C::Int8 | C::Intn => Some(Target::Int64),
        _ => None,
    };
    match (t, sent_int) {
        (a, Some(b)) if int_rank(a).is_some() => {
            return Some(if int_rank(a) >= int_rank(&b) { *a } else { b });
        }
        (Target::Decimal { scale, .. }, Some(_)) => {
            return Some(Target::Decimal {
                precision: 38,
                scale: *scale,
            });
        }
        (Target::Money { .. }, Some(_)) => {
            return Some(Target::Decimal {
                precision: 38,
                scale: 4,
            });
        }
        _ => {}
    }
    match (t, sent) {
        (Target::Float32, C::Float8 | C::Floatn) => Some(Target::Float64),
        (Target::Int16 | Target::Int32 | Target::Int64, C::Decimaln | C::Numericn) => {
            Some(Target::Decimal {
                precision: 38,
                scale: 0,
            })
        }
        (Target::Decimal { scale, .. }, C::Money | C::Money4) => Some(Target::Decimal {
            precision: 38,
            scale: (*scale).max(4),
        }),
        _ => None,
    }
}

fn target_name(t: &Target) -> String {
    t.data_type().to_string()
}

/// Reads one result set, a query item at a time.
pub struct ResultReader {
    described: Option<Vec<SourceColumn>>,
    source: TypeSource,
    batch_rows: usize,
    columns: Vec<SourceColumn>,
    schema: Option<Arc<Schema>>,
    builder: Option<BatchBuilder>,
    /// Rows held back until the undescribed decimals' scales are known.
    pending: Vec<Row>,
    /// Per column: a decimal whose scale is still unknown.
    unknown_scale: Vec<bool>,
    seen_result: bool,
    rows: u64,
}

impl ResultReader {
    /// `described`: the description, or why there is none.
    pub fn new(described: Result<Vec<SourceColumn>, String>, batch_rows: usize) -> Self {
        let (described, source) = match described {
            Ok(c) => (
                Some(c),
                TypeSource {
                    from: "sp_describe_first_result_set",
                    reason: None,
                    widened: vec![],
                },
            ),
            Err(reason) => (
                None,
                TypeSource {
                    from: "result_metadata",
                    reason: Some(reason),
                    widened: vec![],
                },
            ),
        };
        ResultReader {
            described,
            source,
            batch_rows: batch_rows.max(1),
            columns: vec![],
            schema: None,
            builder: None,
            pending: vec![],
            unknown_scale: vec![],
            seen_result: false,
            rows: 0,
        }
    }

    pub fn type_source(&self) -> &TypeSource {
        &self.source
    }

    /// The result's columns, once its metadata has arrived.
    pub fn columns(&self) -> &[SourceColumn] {
        &self.columns
    }

    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.schema.clone()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Takes one item of the stream; returns the batches it completed.
    pub fn push(&mut self, item: QueryItem) -> Result<Vec<RecordBatch>, ResultError> {
        match item {
            QueryItem::Metadata(m) if m.result_index() == 0 => {
                self.seen_result = true;
                self.on_metadata(m.columns())?;
                Ok(vec![])
            }
            QueryItem::Metadata(m) => {
                if m.columns().is_empty() {
                    return Ok(vec![]);
                }
                let names: Vec<&str> = m.columns().iter().map(Column::name).collect();
                Err(ResultError::SecondResult(names.join(", ")))
            }
            QueryItem::Row(r) if r.result_index() == 0 => {
                self.rows += 1;
                if self.builder.is_none() {
                    self.pending.push(r);
                    if self.scales_known() || self.pending.len() >= self.batch_rows {
                        return self.start();
                    }
                    return Ok(vec![]);
                }
                self.append(r)
            }
            QueryItem::Row(_) => Err(ResultError::SecondResult(String::from("(rows)"))),
        }
    }

    /// Whether a result set arrived.
    pub fn saw_result(&self) -> bool {
        self.seen_result
    }

    /// Ends the stream: the last batch, if any rows remain.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>, ResultError> {
        let mut out = vec![];
        if self.builder.is_none() && self.seen_result {
            out = self.start()?;
        }
        if let Some(b) = self.builder.as_mut() {
            if !b.is_empty() {
                out.push(b.finish()?);
            }
        }
        Ok(out)
    }

    fn scales_known(&self) -> bool {
        !self.unknown_scale.iter().any(|u| *u) || self.pending_scales_found()
    }

    fn pending_scales_found(&self) -> bool {
        self.unknown_scale.iter().enumerate().all(|(i, unknown)| {
            !*unknown
                || self
                    .pending
                    .iter()
                    .any(|r| matches!(r.get_column_data(i), Ok(ColumnData::Numeric(Some(_)))))
        })
    }

    fn on_metadata(&mut self, sent: &[Column]) -> Result<(), ResultError> {
        match &self.described {
            Some(described) => {
                if described.len() != sent.len() {
                    return Err(ResultError::Width {
                        described: described.len(),
                        sent: sent.len(),
                    });
                }
                let mut cols = described.clone();
                for (c, s) in cols.iter_mut().zip(sent) {
                    let t = target(c)?;
                    if accepts(&t, s.column_type()) {
                        continue;
                    }
                    match widened(&t, s.column_type()) {
                        Some(w) => {
                            self.source.widened.push(Widening {
                                column: c.name.clone(),
                                described: c.type_name.clone(),
                                sent: format!("{:?}", s.column_type()),
                                written: target_name(&w),
                            });
                            *c = column_for(c, &w);
                        }
                        None => {
                            return Err(ResultError::Mismatch {
                                column: c.name.clone(),
                                described: c.type_name.clone(),
                                sent: format!("{:?}", s.column_type()),
                            })
                        }
                    }
                }
                self.unknown_scale = vec![false; cols.len()];
                self.columns = cols;
            }
            None => {
                let mut cols = Vec::with_capacity(sent.len());
                let mut unknown = Vec::with_capacity(sent.len());
                for s in sent {
                    let name =
                        type_name_of(s.column_type()).ok_or_else(|| SchemaError::Unsupported {
                            column: s.name().to_string(),
                            type_name: format!("{:?}", s.column_type()),
                        })?;
                    let decimal = name == "decimal";
                    unknown.push(decimal);
                    cols.push(SourceColumn {
                        name: s.name().to_string(),
                        type_name: match name {
                            "decimal" => format!("decimal(38,{FALLBACK_SCALE})"),
                            "time" => "time(7)".to_string(),
                            other => other.to_string(),
                        },
                        precision: if decimal { 38 } else { 0 },
                        scale: match name {
                            "decimal" => FALLBACK_SCALE,
                            "time" => 7,
                            _ => 0,
                        },
                        nullable: true,
                    });
                }
                self.unknown_scale = unknown;
                self.columns = cols;
            }
        }
        Ok(())
    }

    /// Fixes the undescribed decimals' scales from the rows held back, then
    /// builds the schema and appends those rows.
    fn start(&mut self) -> Result<Vec<RecordBatch>, ResultError> {
        for (i, unknown) in self.unknown_scale.iter().enumerate() {
            if !*unknown {
                continue;
            }
            let scale = self
                .pending
                .iter()
                .find_map(|r| match r.get_column_data(i) {
                    Ok(ColumnData::Numeric(Some(n))) => Some(n.scale()),
                    _ => None,
                });
            if let (Some(s), Some(c)) = (scale, self.columns.get_mut(i)) {
                c.scale = s;
                c.type_name = format!("decimal(38,{s})");
            }
        }
        self.unknown_scale.iter_mut().for_each(|u| *u = false);
        let (schema, targets) = arrow_schema(&self.columns)?;
        self.schema = Some(schema.clone());
        self.builder = Some(BatchBuilder::new(schema, targets, self.batch_rows));
        let mut out = vec![];
        for r in std::mem::take(&mut self.pending) {
            out.extend(self.append(r)?);
        }
        Ok(out)
    }

    fn append(&mut self, r: Row) -> Result<Vec<RecordBatch>, ResultError> {
        let Some(b) = self.builder.as_mut() else {
            return Ok(vec![]);
        };
        b.push_row(r)?;
        if b.len() >= self.batch_rows {
            return Ok(vec![b.finish()?]);
        }
        Ok(vec![])
    }
}

/// A described column re-typed to a widened target.
fn column_for(c: &SourceColumn, t: &Target) -> SourceColumn {
    let (type_name, precision, scale) = match t {
        Target::Int16 => ("smallint".to_string(), 5, 0),
        Target::Int32 => ("int".to_string(), 10, 0),
        Target::Int64 => ("bigint".to_string(), 19, 0),
        Target::Float64 => ("float".to_string(), 53, 0),
        Target::Decimal { precision, scale } => {
            (format!("decimal({precision},{scale})"), *precision, *scale)
        }
        _ => (c.type_name.clone(), c.precision, c.scale),
    };
    SourceColumn {
        name: c.name.clone(),
        type_name,
        precision,
        scale,
        nullable: c.nullable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_holds_both_types() {
        assert_eq!(
            widened(&Target::Int32, ColumnType::Int8),
            Some(Target::Int64)
        );
        assert_eq!(
            widened(&Target::Int64, ColumnType::Int4),
            Some(Target::Int64)
        );
        assert_eq!(
            widened(&Target::Float32, ColumnType::Float8),
            Some(Target::Float64)
        );
        assert_eq!(
            widened(&Target::Int32, ColumnType::Numericn),
            Some(Target::Decimal {
                precision: 38,
                scale: 0
            })
        );
        assert_eq!(widened(&Target::Int32, ColumnType::Float8), None);
        assert_eq!(widened(&Target::Utf8, ColumnType::Int4), None);
        assert!(accepts(&Target::Float64, ColumnType::Float4));
        assert!(!accepts(&Target::Int32, ColumnType::Int8));
    }
}
