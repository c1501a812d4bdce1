//! Change tracking of a statement's captured rows: each changed primary
//! key becomes a change record of the open transaction (no version yet),
//! merged with the transaction's earlier record of the same key, so one
//! transaction leaves at most one record per key — insert then update is
//! an insert, delete then insert an update of every column, insert then
//! delete nothing. A primary key update is a delete of the old key and an
//! insert of the new one (CHANGETABLE page). The commit stamps the records
//! with the database's next version (`change_tracking::stamp`).

use super::{map_sqlite, Session};
use crate::engine::catalog::{self, quote_ident, TableMeta};
use crate::engine::change_tracking;
use crate::engine::error::SqlError;

impl Session {
    /// Records the changes a statement made to a tracked table, from its
    /// capture tables `new` (rid, old_rid, kind) and `old` (before-images).
    pub(super) fn track_changes(
        &mut self,
        target: &TableMeta,
        new: &str,
        old: &str,
        set_columns: &[String],
    ) -> Result<(), SqlError> {
        let Some(id) = target.object_id else {
            return Ok(());
        };
        let keys: Vec<String> = target
            .columns
            .iter()
            .filter(|c| c.in_pk)
            .map(|c| quote_ident(&c.name))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        // The columns an update assigned (by column id), when the table
        // tracks them: NULL when every non-key column was assigned.
        let updated = if change_tracking::tracks_columns(&self.conn, id)? {
            let candidates: Vec<(usize, &catalog::ColumnDef)> = target
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.in_pk && c.computed.is_none())
                .collect();
            let assigned: Vec<usize> = candidates
                .iter()
                .filter(|(_, c)| set_columns.iter().any(|s| s.eq_ignore_ascii_case(&c.name)))
                .map(|(i, _)| i + 1)
                .collect();
            if assigned.len() == candidates.len() {
                "NULL".to_string()
            } else {
                format!(
                    "'{}'",
                    assigned
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        } else {
            "NULL".to_string()
        };
        // The statement's WITH CHANGE_TRACKING_CONTEXT, kept with its records
        // (the last change's context is the one CHANGETABLE returns).
        let context = match &self.ct_context {
            Some(b) => format!(
                "X'{}'",
                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
            ),
            None => "NULL".to_string(),
        };
        self.next_capture += 1;
        let chg_name = format!("__sb_chg_{}", self.next_capture);
        let chg = format!("temp.{}", quote_ident(&chg_name));
        let side = change_tracking::side_table(id);
        // The statement's records, in a table whose keys compare as the table's.
        let mut key_meta = target.clone();
        key_meta.columns = target
            .columns
            .iter()
            .filter(|c| c.in_pk)
            .map(|c| catalog::ColumnDef {
                identity: None,
                computed: None,
                in_pk: false,
                rowversion: false,
                ..c.clone()
            })
            .collect();
        key_meta.physical = chg.clone();
        let ddl = catalog::sqlite_ddl(&key_meta)
            .into_iter()
            .next()
            .unwrap_or_default();
        let ddl = ddl.strip_suffix(')').unwrap_or(&ddl).to_string();
        let k = keys.join(", ");
        let with = |alias: &str| {
            keys.iter()
                .map(|c| format!("{alias}.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let same = |a: &str, b: &str| {
            keys.iter()
                .map(|c| format!("{a}.{c} = {b}.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let updates = format!(
            "{new} AS \"__n\" JOIN {old} AS \"__o\" ON \"__o\".\"__rid\" = \"__n\".\"__old_rid\" AND \"__o\".\"__kind\" = 'U' \
             JOIN {table} AS \"__t\" ON \"__t\".rowid = \"__n\".\"__rid\" WHERE \"__n\".\"__kind\" = 'U'",
            table = target.physical
        );
        let steps = [
            format!(
                "{ddl}, \"__op\" TEXT, \"__columns\" TEXT, \"__done\" INTEGER NOT NULL DEFAULT 0)"
            ),
            format!(
                "INSERT INTO {chg} ({k}, \"__op\") SELECT {t} , 'I' FROM {table} AS \"__t\" \
                 WHERE \"__t\".rowid IN (SELECT \"__rid\" FROM {new} WHERE \"__kind\" = 'I')",
                t = with("\"__t\""),
                table = target.physical
            ),
            format!(
                "INSERT INTO {chg} ({k}, \"__op\") SELECT {o}, 'D' FROM {old} AS \"__o\" WHERE \"__o\".\"__kind\" = 'D'",
                o = with("\"__o\"")
            ),
            format!(
                "INSERT INTO {chg} ({k}, \"__op\", \"__columns\") SELECT {t}, 'U', {updated} FROM {updates} AND {eq}",
                t = with("\"__t\""),
                eq = same("\"__t\"", "\"__o\"")
            ),
            format!(
                "INSERT INTO {chg} ({k}, \"__op\") SELECT {o}, 'D' FROM {updates} AND NOT ({eq})",
                o = with("\"__o\""),
                eq = same("\"__t\"", "\"__o\"")
            ),
            format!(
                "INSERT INTO {chg} ({k}, \"__op\") SELECT {t}, 'I' FROM {updates} AND NOT ({eq})",
                t = with("\"__t\""),
                eq = same("\"__t\"", "\"__o\"")
            ),
            // A key deleted and inserted by the same statement (keys swapped):
            // an update of every column.
            format!(
                "UPDATE {chg} SET \"__op\" = 'U', \"__columns\" = NULL WHERE \"__op\" = 'I' \
                 AND EXISTS (SELECT 1 FROM {chg} AS \"__d\" WHERE \"__d\".\"__op\" = 'D' AND {eq})",
                eq = same("\"__d\"", quote_ident(&chg_name).as_str())
            ),
            format!(
                "DELETE FROM {chg} WHERE \"__op\" = 'D' AND EXISTS (SELECT 1 FROM {chg} AS \"__u\" \
                 WHERE \"__u\".\"__op\" = 'U' AND \"__u\".\"__columns\" IS NULL AND {eq})",
                eq = same("\"__u\"", quote_ident(&chg_name).as_str())
            ),
            // Merged into the transaction's earlier record of the key.
            format!(
                "UPDATE {chg} SET \"__done\" = 1 WHERE EXISTS (SELECT 1 FROM {side} AS \"__s\" \
                 WHERE \"__s\".\"__version\" IS NULL AND {eq})",
                eq = same("\"__s\"", quote_ident(&chg_name).as_str())
            ),
            format!(
                "DELETE FROM {side} WHERE \"__version\" IS NULL AND \"__op\" = 'I' AND EXISTS \
                 (SELECT 1 FROM {chg} AS \"__c\" WHERE \"__c\".\"__op\" = 'D' AND {eq})",
                eq = keys
                    .iter()
                    .map(|c| format!("\"__c\".{c} = {side}.{c}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            format!(
                "UPDATE {side} AS \"__s\" SET \
                 \"__op\" = CASE WHEN \"__s\".\"__op\" = 'D' AND \"__c\".\"__op\" = 'I' THEN 'U' \
                                 WHEN \"__s\".\"__op\" = 'U' AND \"__c\".\"__op\" = 'D' THEN 'D' \
                                 ELSE \"__s\".\"__op\" END, \
                 \"__context\" = {context}, \
                 \"__columns\" = CASE WHEN \"__s\".\"__op\" = 'U' AND \"__c\".\"__op\" = 'U' \
                                          AND \"__s\".\"__columns\" IS NOT NULL AND \"__c\".\"__columns\" IS NOT NULL \
                                      THEN \"__s\".\"__columns\" || ',' || \"__c\".\"__columns\" END \
                 FROM {chg} AS \"__c\" WHERE \"__s\".\"__version\" IS NULL AND {eq}",
                eq = same("\"__s\"", "\"__c\""),
            ),
            format!(
                "INSERT INTO {side} ({k}, \"__version\", \"__op\", \"__columns\", \"__context\") \
                 SELECT {k}, NULL, \"__op\", \"__columns\", {context} FROM {chg} WHERE \"__done\" = 0"
            ),
            format!("DROP TABLE {chg}"),
        ];
        for s in &steps {
            self.conn
                .execute_batch(s)
                .map_err(|e| map_sqlite(e, None))?;
        }
        self.ct_dirty.set(true);
        Ok(())
    }
}
