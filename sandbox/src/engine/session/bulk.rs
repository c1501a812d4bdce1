//! `INSERT BULK` and its BulkLoad rows (MS-TDS 2.2.6.1): the statement a
//! client sends first, with the hints of its WITH clause, then the rows,
//! written in one statement-level savepoint: all rows or none.
//!
//! The hints are those of MS-TDS's INSERT BULK grammar, as SqlBulkCopy,
//! Microsoft's mssql-tds (mssql-python) and tiberius'
//! `bulk_insert_with_options` send them:
//! `WITH (CHECK_CONSTRAINTS, FIRE_TRIGGERS, KEEP_NULLS, TABLOCK,
//! ORDER (col [ASC|DESC], ...), ROWS_PER_BATCH = n, KILOBYTES_PER_BATCH = n)`.
//! - CHECK_CONSTRAINTS: without it, CHECK and FOREIGN KEY constraints are
//!   ignored and, after the operation, marked not trusted
//!   (learn.microsoft.com/sql/t-sql/statements/bulk-insert-transact-sql).
//! - FIRE_TRIGGERS: without it, INSERT triggers do not fire; with it they
//!   fire once per batch — one BulkLoad message here
//!   (learn.microsoft.com/sql/relational-databases/import-export/control-trigger-execution-when-bulk-importing-data).
//! - KEEP_NULLS: without it, a NULL sent for a column with a DEFAULT gets
//!   the default
//!   (learn.microsoft.com/sql/relational-databases/import-export/keep-nulls-or-use-default-values-during-bulk-import-sql-server).
//! - TABLOCK, ORDER, ROWS_PER_BATCH, KILOBYTES_PER_BATCH: accepted; they
//!   change locking and performance, not results.

use rusqlite::types::ValueRef;

use super::effects::{Effects, FirstError, WriteOptions};
use super::{internal, map_sqlite, matching_paren, translate_default, Failure, Session};
use crate::engine::catalog::{quote_ident, TableMeta};
use crate::engine::constraints;
use crate::engine::convert::{convert, to_storage, Overlong};
use crate::engine::error::SqlError;
use crate::engine::translate::DmlKind;
use crate::types::Value;

/// The WITH hints of an INSERT BULK.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkOptions {
    pub check_constraints: bool,
    pub fire_triggers: bool,
    pub keep_nulls: bool,
    pub tablock: bool,
    /// Accepted for the clients that send it; identity values are kept
    /// when the client lists the identity column, with or without it.
    pub keep_identity: bool,
    /// `ORDER (...)` as written.
    pub order: Option<String>,
    pub rows_per_batch: Option<u64>,
    pub kilobytes_per_batch: Option<u64>,
}

/// A parsed `INSERT BULK` statement, waiting for its BulkLoad rows.
#[derive(Clone, Debug)]
pub struct BulkTarget {
    pub table: TableMeta,
    /// Table column index for each column the client will send.
    pub columns: Vec<usize>,
    pub options: BulkOptions,
}

/// Splits `text` at commas outside parentheses and brackets.
fn split_top(text: &str) -> Vec<&str> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, ch) in text.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None => match ch {
                '[' => quote = Some(']'),
                '\'' | '"' => quote = Some(ch),
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    out.push(&text[start..]);
    out
}

/// The hints of `WITH ( ... )`; an unknown one is a syntax error, as SQL
/// Server answers it.
pub(super) fn parse_options(text: &str) -> Result<BulkOptions, SqlError> {
    let mut o = BulkOptions::default();
    for raw in split_top(text) {
        let hint = raw.trim();
        if hint.is_empty() {
            continue;
        }
        let upper = hint.to_ascii_uppercase();
        let number = |name: &str| -> Result<u64, SqlError> {
            let rest = upper[name.len()..].trim_start();
            rest.strip_prefix('=')
                .map(str::trim)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| SqlError::syntax_near(name))
        };
        match upper.as_str() {
            "CHECK_CONSTRAINTS" => o.check_constraints = true,
            "FIRE_TRIGGERS" => o.fire_triggers = true,
            "KEEP_NULLS" => o.keep_nulls = true,
            "TABLOCK" => o.tablock = true,
            "KEEPIDENTITY" | "KEEP_IDENTITY" => o.keep_identity = true,
            // SqlBulkCopy's Always Encrypted option: nothing to do here.
            "ALLOW_ENCRYPTED_VALUE_MODIFICATIONS" => {}
            u if u.starts_with("ORDER") && u[5..].trim_start().starts_with('(') => {
                o.order = Some(hint[5..].trim().to_string())
            }
            u if u.starts_with("ROWS_PER_BATCH") => {
                o.rows_per_batch = Some(number("ROWS_PER_BATCH")?)
            }
            u if u.starts_with("KILOBYTES_PER_BATCH") => {
                o.kilobytes_per_batch = Some(number("KILOBYTES_PER_BATCH")?)
            }
            _ => {
                let near = hint.split_whitespace().next().unwrap_or(hint);
                return Err(SqlError::syntax_near(near));
            }
        }
    }
    Ok(o)
}

impl Session {
    /// Parses `INSERT BULK table (col type, ...) [WITH (...)]`.
    pub fn bulk_target(&self, sql: &str) -> Result<Option<BulkTarget>, SqlError> {
        let re = regex::Regex::new(r"(?is)^\s*insert\s+bulk\s+").expect("static regex");
        let Some(head) = re.find(sql) else {
            return Ok(None);
        };
        let rest = &sql[head.end()..];
        // name ( column definitions ) [WITH ( options )], parentheses balanced.
        let open = rest
            .find('(')
            .ok_or_else(|| SqlError::syntax_near("BULK"))?;
        let close = matching_paren(rest, open).ok_or_else(|| SqlError::syntax_near("BULK"))?;
        let defs_text = &rest[open + 1..close];
        let tail = rest[close + 1..].trim().trim_end_matches(';').trim();
        let opts_text = if tail.is_empty() {
            ""
        } else {
            let lower = tail.to_ascii_lowercase();
            let body = lower
                .strip_prefix("with")
                .map(str::trim_start)
                .filter(|b| b.starts_with('('))
                .ok_or_else(|| SqlError::syntax_near(tail))?;
            let start = tail.len() - body.len();
            let end = matching_paren(tail, start).ok_or_else(|| SqlError::syntax_near("WITH"))?;
            if !tail[end + 1..].trim().is_empty() {
                return Err(SqlError::syntax_near(tail[end + 1..].trim()));
            }
            &tail[start + 1..end]
        };
        let options = parse_options(opts_text)?;
        let name = sqlparser::parser::Parser::new(&sqlparser::dialect::MsSqlDialect {})
            .try_with_sql(rest[..open].trim())
            .and_then(|mut p| p.parse_object_name(false))
            .map_err(|_| SqlError::syntax_near("BULK"))?;
        let table = self.ctx().table(&name)?;
        let mut columns = Vec::new();
        for p in split_top(defs_text) {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let cname = if let Some(rest) = p.strip_prefix('[') {
                rest.split_once(']')
                    .map(|(n, _)| n.to_string())
                    .unwrap_or_default()
            } else if let Some(rest) = p.strip_prefix('"') {
                rest.split_once('"')
                    .map(|(n, _)| n.to_string())
                    .unwrap_or_default()
            } else {
                p.split_whitespace().next().unwrap_or("").to_string()
            };
            let (i, _) = table
                .column(&cname)
                .ok_or_else(|| SqlError::invalid_column(&cname))?;
            columns.push(i);
        }
        Ok(Some(BulkTarget {
            table,
            columns,
            options,
        }))
    }

    /// Inserts BulkLoad rows into the target in one statement-level
    /// savepoint: all rows or none, then the hinted checks and triggers.
    pub fn bulk_insert(
        &mut self,
        target: &BulkTarget,
        rows: &mut dyn FnMut() -> Result<Option<Vec<Value>>, SqlError>,
    ) -> Result<u64, SqlError> {
        let meta = &target.table;
        // An identity column the client lists is a column it supplies
        // (SqlBulkCopy's KeepIdentity sends it; without it, it is left out).
        // Computed and rowversion columns sent are read and left to the
        // engine, which sets them.
        let used: Vec<(usize, usize)> = target
            .columns
            .iter()
            .enumerate()
            .filter(|(_, &ci)| meta.columns[ci].computed.is_none() && !meta.columns[ci].rowversion)
            .map(|(wire, &ci)| (wire, ci))
            .collect();
        let mut defaults: Vec<(usize, String)> = Vec::new();
        for (ci, c) in meta.columns.iter().enumerate() {
            if !target.columns.contains(&ci) {
                if let Some(d) = &c.default {
                    defaults.push((ci, d.clone()));
                }
            }
        }
        let ctx_defaults: Vec<Option<String>> = used
            .iter()
            .map(|(_, ci)| {
                meta.columns[*ci]
                    .default
                    .as_deref()
                    .filter(|_| !target.options.keep_nulls)
                    .map(|d| translate_default(&self.ctx(), d))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let mut names: Vec<String> = used
            .iter()
            .map(|(_, ci)| quote_ident(&meta.columns[*ci].name))
            .collect();
        // Without KEEP_NULLS a NULL sent for a column with a DEFAULT takes the default.
        let mut placeholders: Vec<String> = ctx_defaults
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Some(d) => format!("coalesce(?{}, {d})", i + 1),
                None => format!("?{}", i + 1),
            })
            .collect();
        for (ci, d) in &defaults {
            names.push(quote_ident(&meta.columns[*ci].name));
            placeholders.push(translate_default(&self.ctx(), d)?);
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            meta.physical,
            names.join(", "),
            placeholders.join(", ")
        );
        let opts = WriteOptions {
            check_constraints: target.options.check_constraints,
            fire_triggers: target.options.fire_triggers,
        };
        let outer = self.stmt_begin("__bulk", !meta.temp)?;
        let table_name = meta.full_name();
        let mut sink = FirstError::default();
        let result = (|| -> Result<u64, Failure> {
            let effects = self.write_effects(meta, DmlKind::Insert, opts)?;
            let capture = if effects.any() {
                Some(self.capture_begin(meta)?)
            } else {
                None
            };
            let loaded = (|| -> Result<u64, SqlError> {
                let mut st = self
                    .conn
                    .prepare(&sql)
                    .map_err(|e| map_sqlite(e, Some(meta)))?;
                if let Some(c) = &capture {
                    c.set_mode(Some('I'));
                }
                let mut n = 0u64;
                while let Some(row) = rows()? {
                    for (k, (wire, ci)) in used.iter().enumerate() {
                        let col = &meta.columns[*ci];
                        let v = row.get(*wire).cloned().unwrap_or(Value::Null);
                        let stored = to_storage(&v);
                        let v = convert(
                            ValueRef::from(&stored),
                            &col.ty,
                            Overlong::Error {
                                table: &table_name,
                                column: &col.name,
                            },
                        )?;
                        st.raw_bind_parameter(k + 1, to_storage(&v))
                            .map_err(internal)?;
                    }
                    st.raw_execute().map_err(|e| map_sqlite(e, Some(meta)))?;
                    n += 1;
                }
                Ok(n)
            })();
            if let Some(c) = &capture {
                c.set_mode(None);
            }
            let r = match (loaded, &capture) {
                (Ok(n), Some(c)) => self
                    .after_write(meta, c, &effects, DmlKind::Insert, &[], n, &mut sink)
                    .map(|()| n),
                (other, _) => other.map_err(Failure::from),
            };
            if let Some(c) = capture {
                self.capture_end(c);
            }
            let n = r?;
            if !target.options.check_constraints {
                // Skipped constraints can no longer be trusted.
                for id in Effects::skipped_constraint_ids(meta) {
                    let disabled = false;
                    constraints::set_state(&self.conn, id, disabled, true)?;
                }
            }
            Ok(n)
        })();
        if self.conn.is_autocommit() {
            // A trigger ended the transaction.
            return match result {
                Ok(n) => Ok(n),
                Err(f) => Err(bulk_error(f, sink)),
            };
        }
        let keep = result.is_ok();
        if !keep {
            let _ = self.conn.execute_batch("ROLLBACK TO __bulk");
        }
        self.stmt_end("__bulk", keep, outer)?;
        match result {
            Ok(n) => {
                self.rowcount = n as i64;
                Ok(n)
            }
            Err(f) => Err(bulk_error(f, sink)),
        }
    }
}

/// A bulk load's failure as the error the client receives.
fn bulk_error(f: Failure, sink: FirstError) -> SqlError {
    match f {
        Failure::Sql(e) => e,
        _ => sink.error.unwrap_or_else(|| {
            SqlError::new(
                3609,
                1,
                16,
                "The transaction ended in the trigger. The batch has been aborted.",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_as_clients_send_them() {
        // tiberius 0.13 build_insert_bulk_sql, with every flag and an order hint.
        let o = parse_options(
            "CHECK_CONSTRAINTS, TABLOCK, KEEP_NULLS, FIRE_TRIGGERS, ORDER([val] ASC)",
        )
        .unwrap();
        assert!(o.check_constraints && o.tablock && o.keep_nulls && o.fire_triggers);
        assert_eq!(o.order.as_deref(), Some("([val] ASC)"));
        let o = parse_options("ROWS_PER_BATCH = 5000, KILOBYTES_PER_BATCH=64").unwrap();
        assert_eq!(o.rows_per_batch, Some(5000));
        assert_eq!(o.kilobytes_per_batch, Some(64));
        assert_eq!(parse_options("").unwrap(), BulkOptions::default());
        assert_eq!(parse_options("NOPE").unwrap_err().number, 102);
    }
}
