//! A write split across tasks (Spark executors), applied exactly once.
//!
//! Each task bulk-loads its rows into a stage table of its own, named by
//! the write, its partition and its attempt, and reports the table and its
//! row count (the commit message). The driver then applies every reported
//! stage in one SQL Server transaction with the ledger row of the write id
//! ([`super::apply_once`], as a sync event): a re-run of the same write id
//! writes nothing; a task that died, was retried or ran twice
//! (speculation) leaves a stage nobody reports, which is dropped with the
//! others once the write is committed or aborted. Stage tables are
//! ordinary tables in the target's database (schema `dbo`, or the one the
//! caller names — where its login may create tables): temp tables die with
//! the task's session, before the commit.

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Receiver;

use super::apply::{self, Plan, PlannedColumn, StageRef};
use super::event::{bracket, Operation, SyncEvent, TargetTable};
use super::keys::KeyCheck;
use super::{
    apply_once, pair_columns, sql_error, target, Rows, SyncError, SyncOutcome, UpsertMethod,
};
use crate::databricks::statements::ColumnInfo;
use crate::retry::RetryPolicy;
use crate::sqlserver::pool::{self, Pool};
use arrow_array::RecordBatch;

/// The open runs of distributed writes, beside their stages.
const RUNS: &str = "bridge_stage_runs";

/// What the ledger records as the source of a distributed write.
const SOURCE: &str = "Spark DataFrame";

/// A distributed write, planned: what every task and the commit share.
#[derive(Clone, Debug)]
pub struct StagedWrite {
    pub plan: Plan,
    /// Every stage table of this write starts with it.
    prefix: String,
    /// This run of the write (a job and its re-run share the write id, not
    /// the run): its stages are `<prefix><run>_p<partition>_a<attempt>`, so
    /// two runs overlapping never load into the same table.
    run: String,
    /// The schema of the stage tables, in the target's database.
    stage_schema: String,
}

/// A caller's id for a write (`what`: its name for the caller): 1–90
/// characters of `A-Z a-z 0-9 . _ : -` (a job run's id, say), so that it
/// can be a ledger key as it is.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    let valid = (1..=90).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{what} '{id}' must be 1 to 90 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'"
        ))
    }
}

/// A run id (the same on the driver and every task; it names the stages):
/// 1–32 characters of `a-z 0-9`.
pub fn check_run_id(run: &str) -> Result<(), String> {
    let valid = (1..=32).contains(&run.len())
        && run
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "run_id '{run}' must be 1 to 32 characters of a-z and 0-9"
        ))
    }
}

/// The schema the stage tables go in, trimmed: 1–128 characters (a
/// `sysname`), none a control character.
pub fn check_stage_schema(schema: &str) -> Result<&str, String> {
    let s = schema.trim();
    if (1..=128).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
        Ok(s)
    } else {
        Err(format!("stage_schema '{schema}' is not a schema name"))
    }
}

/// The write id a bridge server applies a user's write under: the
/// caller's, prefixed by a digest of the user's name, so two users' ids
/// never meet in the ledger or the stage names (one cannot make another's
/// write a no-op, nor abort its run). 1–78 characters as [`check_id`]'s.
pub fn scoped_write_id(user: &str, write_id: &str) -> Result<String, String> {
    check_id("write_id", write_id)?;
    if write_id.len() > 78 {
        return Err(format!(
            "write_id '{write_id}' must be at most 78 characters through a bridge server"
        ));
    }
    let digest = Sha256::new()
        .chain_update(b"spark-write\0")
        .chain_update(user.as_bytes())
        .finalize();
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    Ok(format!("u{hex}:{write_id}"))
}

/// A new run id: 12 random hex digits.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// What a caller asks of a distributed write.
pub struct WriteRequest<'a> {
    pub write_id: &'a str,
    pub operation: &'a str,
    pub target_table: &'a str,
    pub primary_keys: &'a [String],
    /// The DataFrame's columns: name and Spark type (`decimal(18,2)`).
    pub columns: &'a [(String, String)],
    pub max_delete_rows: Option<u64>,
    pub table_lock: bool,
    pub applied_by: &'a str,
    /// This run's id (1–32 characters of `a-z 0-9`), the same on the
    /// driver and every task.
    pub run: &'a str,
    /// Where the stages go in the target's database (`dbo` when `None`).
    pub stage_schema: Option<&'a str>,
}

impl StagedWrite {
    /// Checks the request against the target (it exists, every column is
    /// in it, each type converts without loss, the keys are its columns)
    /// before any row moves.
    pub async fn plan(pool: &Pool, r: &WriteRequest<'_>) -> Result<StagedWrite, SyncError> {
        check_id("write_id", r.write_id).map_err(SyncError::Refused)?;
        check_run_id(r.run).map_err(SyncError::Refused)?;
        let mut event =
            SyncEvent::direct(r.operation, SOURCE, r.target_table, r.primary_keys.to_vec());
        event.event_id = format!("spark-{}", r.write_id);
        let op = Operation::parse(&event.operation).ok_or_else(|| {
            SyncError::Refused(format!(
                "unknown operation '{}'; use INSERT, UPDATE, DELETE or UPSERT",
                r.operation
            ))
        })?;
        if op.needs_keys() && r.primary_keys.is_empty() {
            return Err(SyncError::Refused(format!(
                "{} needs primary_key (the target's key columns)",
                op.as_str()
            )));
        }
        for k in r.primary_keys {
            super::event::column_name(k)?;
        }
        let target = TargetTable::parse(r.target_table)?;
        let stage_schema =
            check_stage_schema(r.stage_schema.unwrap_or("dbo")).map_err(SyncError::Refused)?;
        let source_cols: Vec<ColumnInfo> = r
            .columns
            .iter()
            .map(|(name, ty)| ColumnInfo {
                name: name.clone(),
                type_name: ty.clone(),
                type_text: ty.clone(),
            })
            .collect();
        let mut conn = pool::get(pool).await?;
        let target_cols = target::columns(&mut conn, &target)
            .await
            .map_err(sql_error)?;
        let schema_found = target::rows(
            &mut conn,
            &format!(
                "SELECT name FROM {}sys.schemas WHERE name = @P1",
                target.database_prefix()
            ),
            &[&stage_schema],
        )
        .await
        .map_err(sql_error)?;
        drop(conn);
        if schema_found.is_empty() {
            return Err(SyncError::Refused(format!(
                "stage_schema '{stage_schema}' does not exist in the database of {target} (the stage tables go there)"
            )));
        }
        if target_cols.is_empty() {
            return Err(SyncError::Refused(format!(
                "target table {target} does not exist"
            )));
        }
        let (columns, keys) = pair_columns(&event, &source_cols, &target_cols, &target)?;
        let described: Vec<String> = r
            .columns
            .iter()
            .map(|(n, t)| format!("{n} {}", t.to_ascii_lowercase()))
            .collect();
        let source_sql = format!("{SOURCE} ({})", described.join(", "));
        let digest = Sha256::digest(event.event_id.as_bytes());
        let prefix = format!(
            "bridge_stage_{}_",
            digest
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(StagedWrite {
            plan: Plan {
                request_sha256: Plan::fingerprint(op, &source_sql, &[], &target, &keys),
                event_id: event.event_id,
                operation: op,
                source_table: SOURCE.into(),
                source_sql,
                source_params: Vec::new(),
                target,
                columns,
                keys,
                max_delete_rows: r.max_delete_rows,
                applied_by: r.applied_by.to_string(),
                upsert: UpsertMethod::default(),
                table_lock: r.table_lock,
            },
            prefix,
            run: r.run.to_string(),
            stage_schema: stage_schema.to_string(),
        })
    }

    /// The write's id in the ledger (`spark-<write id>`).
    pub fn ledger_id(&self) -> &str {
        &self.plan.event_id
    }

    /// The run this plan stages for.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The stage table of one task attempt of this run.
    pub fn stage_name(&self, partition: u64, attempt: u64) -> String {
        format!("{}{}_p{partition}_a{attempt}", self.prefix, self.run)
    }

    fn stage_run<'n>(&self, name: &'n str) -> Option<&'n str> {
        stage_run(&self.prefix, name)
    }

    fn quoted(&self, name: &str) -> String {
        format!(
            "{}{}.{}",
            self.plan.target.database_prefix(),
            bracket(&self.stage_schema),
            bracket(name)
        )
    }

    /// A stage named in a commit message, if it is one of this run's: the
    /// name is the message's, so it is checked before it goes into SQL.
    pub fn stage_ref(&self, name: &str, rows: u64) -> Result<StageRef, SyncError> {
        if self.stage_run(name) != Some(self.run.as_str()) {
            return Err(SyncError::Refused(format!(
                "'{name}' is not a stage table of write {} (run {})",
                self.plan.event_id, self.run
            )));
        }
        Ok(StageRef {
            quoted: self.quoted(name),
            rows,
        })
    }

    /// Loads one task's batches into its stage table (made anew: a stage
    /// left by an earlier run of the same attempt is replaced), converting
    /// every value to the target column's type as the commit will write it;
    /// the stage, once every row is in.
    pub async fn stage(
        &self,
        pool: &Pool,
        partition: u64,
        attempt: u64,
        batches: &mut Receiver<RecordBatch>,
    ) -> Result<StageRef, SyncError> {
        let mut conn = pool::get(pool).await?;
        let staged = self.stage_on(&mut conn, partition, attempt, batches).await;
        if staged.is_err() {
            // Mid-bulk: the connection is not reused.
            let _ = deadpool::managed::Object::take(conn);
        }
        staged
    }

    /// [`stage`](Self::stage) on a connection of the caller's (which closes
    /// it when this fails: it may be mid-bulk).
    pub async fn stage_on(
        &self,
        conn: &mut pool::PooledConnection,
        partition: u64,
        attempt: u64,
        batches: &mut Receiver<RecordBatch>,
    ) -> Result<StageRef, SyncError> {
        let name = self.stage_name(partition, attempt);
        let quoted = self.quoted(&name);
        let decl: Vec<String> = self
            .plan
            .columns
            .iter()
            .map(|c: &PlannedColumn| {
                format!(
                    "{} {} NULL",
                    bracket(&c.target.name),
                    c.target.declaration()
                )
            })
            .collect();
        let cols: Vec<String> = self
            .plan
            .columns
            .iter()
            .map(|c| bracket(&c.target.name))
            .collect();
        let result = async {
            // The stage is made only while the run is open, in one
            // transaction with a locked read of its row: a commit or abort
            // closing the run (deleting the row) waits for it, then finds
            // the stage to drop; a task late for its run (cancelled as the
            // job ended, still running) finds no row and makes nothing.
            apply::batch(conn, "BEGIN TRANSACTION").await?;
            let open = target::rows(
                conn,
                &format!(
                    "SELECT run_id FROM {} WITH (UPDLOCK, HOLDLOCK) WHERE run_id = @P1 AND event_id = @P2",
                    self.runs_table()
                ),
                &[&self.run.as_str(), &self.plan.event_id.as_str()],
            )
            .await
            .map_err(sql_error)?;
            if open.is_empty() {
                apply::batch(conn, "ROLLBACK TRANSACTION").await?;
                return Err(SyncError::Refused(format!(
                    "run {} of write {} is over (committed or aborted); this task stages nothing",
                    self.run, self.plan.event_id
                )));
            }
            drop_tables(conn, std::slice::from_ref(&quoted)).await?;
            apply::batch(
                conn,
                &format!("CREATE TABLE {quoted} ({})", decl.join(", ")),
            )
            .await?;
            apply::batch(conn, "COMMIT TRANSACTION").await?;
            let mut keys = KeyCheck::new(false);
            let rows = apply::load(
                conn, &self.plan, batches, &quoted, false, true, &cols, &mut keys,
            )
            .await?;
            Ok::<_, SyncError>(rows)
        }
        .await;
        result.map(|rows| StageRef { quoted, rows })
    }

    /// Applies the reported stages in one transaction with the ledger row,
    /// once (a write id already in the ledger writes nothing and answers
    /// its first counts), then drops every stage of the write — the
    /// reported ones and those of failed or duplicate attempts — whether
    /// it committed or failed: a failed write is re-run from its tasks.
    pub async fn commit(
        &self,
        pool: &Pool,
        retry: &RetryPolicy,
        stages: &[StageRef],
    ) -> Result<SyncOutcome, SyncError> {
        let plan = &self.plan;
        // Closed first: no task of any run of this write makes a stage after.
        self.close(pool, true).await?;
        let out = apply_once(pool, retry, plan, Rows::Stages(stages)).await;
        if let Err(e) = self.drop_stages(pool, true).await {
            tracing::warn!(write = plan.event_id, error = %e, "dropping the stage tables failed (the write's next commit or abort drops them)");
        }
        out
    }

    /// Opens this run (the driver, before any task): its tasks may stage
    /// until the run is closed by the commit or the abort.
    pub async fn open(&self, pool: &Pool) -> Result<(), SyncError> {
        let mut conn = pool::get(pool).await?;
        self.ensure_runs(&mut conn).await?;
        let opened = conn
            .execute(
                format!(
                    "INSERT INTO {} (run_id, event_id, opened_at) VALUES (@P1, @P2, SYSUTCDATETIME())",
                    self.runs_table()
                ),
                &[&self.run.as_str(), &self.plan.event_id.as_str()],
            )
            .await;
        match opened {
            Ok(_) => Ok(()),
            // Opened already (an answer lost, asked again) — by this write,
            // not another one that drew the same run id.
            Err(tiberius::error::Error::Server(e)) if e.code() == 2627 => {
                let mine = target::rows(
                    &mut conn,
                    &format!(
                        "SELECT run_id FROM {} WHERE run_id = @P1 AND event_id = @P2",
                        self.runs_table()
                    ),
                    &[&self.run.as_str(), &self.plan.event_id.as_str()],
                )
                .await
                .map_err(sql_error)?;
                if mine.is_empty() {
                    return Err(SyncError::Refused(format!(
                        "run id {} is open for another write; draw another",
                        self.run
                    )));
                }
                Ok(())
            }
            Err(e) => Err(sql_error(e)),
        }
    }

    /// Aborts the run: closed (a task of it still running makes no stage
    /// after), then its stages dropped; how many.
    pub async fn abort(&self, pool: &Pool) -> Result<u64, SyncError> {
        self.close(pool, false).await?;
        self.drop_stages(pool, false).await
    }

    /// Closes this run, or every run of the write (`all`: the write is
    /// applied, nothing of any run is needed).
    async fn close(&self, pool: &Pool, all: bool) -> Result<(), SyncError> {
        let mut conn = pool::get(pool).await?;
        self.ensure_runs(&mut conn).await?;
        // A run is closed only for its own write: another write that names
        // the same run id closes nothing of it.
        let only_run = if all { "" } else { " AND run_id = @P2" };
        conn.execute(
            format!(
                "DELETE FROM {} WHERE event_id = @P1{only_run}",
                self.runs_table()
            ),
            &[&self.plan.event_id.as_str(), &self.run.as_str()],
        )
        .await
        .map_err(sql_error)?;
        Ok(())
    }

    /// `[db].[stage schema].[bridge_stage_runs]`: the open runs.
    fn runs_table(&self) -> String {
        self.quoted(RUNS)
    }

    /// Creates the runs table when missing.
    async fn ensure_runs(&self, conn: &mut crate::sqlserver::Connection) -> Result<(), SyncError> {
        let exists = target::rows(
            conn,
            &format!(
                "SELECT TABLE_NAME FROM {}INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = @P1 AND TABLE_NAME = @P2",
                self.plan.target.database_prefix()
            ),
            &[&self.stage_schema.as_str(), &RUNS],
        )
        .await
        .map_err(sql_error)?;
        if !exists.is_empty() {
            return Ok(());
        }
        let create = format!(
            "CREATE TABLE {} (run_id nvarchar(32) NOT NULL PRIMARY KEY, event_id nvarchar(100) NOT NULL, \
             opened_at datetime2(3) NOT NULL)",
            self.runs_table()
        );
        match conn.simple_query(create).await {
            Ok(st) => st.into_results().await.map(|_| ()).map_err(sql_error),
            // Another task or driver made it in between.
            Err(tiberius::error::Error::Server(e)) if e.code() == 2714 => Ok(()),
            Err(e) => Err(sql_error(e)),
        }
    }

    /// Drops the stage tables of this run, or of every run of the write
    /// (`all`; a run that overlaps this one reads the ledger before its
    /// stages, and finds the write applied); how many there were.
    pub async fn drop_stages(&self, pool: &Pool, all: bool) -> Result<u64, SyncError> {
        let mut conn = pool::get(pool).await?;
        let found = target::rows(
            &mut conn,
            &format!(
                "SELECT TABLE_NAME FROM {}INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = @P2 AND LEFT(TABLE_NAME, {}) = @P1",
                self.plan.target.database_prefix(),
                self.prefix.len()
            ),
            &[&self.prefix.as_str(), &self.stage_schema.as_str()],
        )
        .await
        .map_err(sql_error)?;
        let names: Vec<String> = found
            .iter()
            .filter_map(|r| r.try_get::<&str, _>(0).ok().flatten())
            .filter(|n| match self.stage_run(n) {
                Some(run) => all || run == self.run,
                None => false,
            })
            .map(|n| self.quoted(n))
            .collect();
        drop_tables(&mut conn, &names).await?;
        Ok(names.len() as u64)
    }
}

/// Whether `name` is a stage table of the write whose stages start with
/// `prefix`, of any run: `<prefix><run>_p<digits>_a<digits>`; the run, when
/// it is.
fn stage_run<'n>(prefix: &str, name: &'n str) -> Option<&'n str> {
    let rest = name.strip_prefix(prefix)?;
    let (run, rest) = rest.split_once("_p")?;
    let (p, a) = rest.split_once("_a")?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let run_ok = !run.is_empty()
        && run
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (run_ok && digits(p) && digits(a)).then_some(run)
}

/// Drops the tables that exist among `quoted`.
async fn drop_tables(
    conn: &mut crate::sqlserver::Connection,
    quoted: &[String],
) -> Result<(), SyncError> {
    for q in quoted {
        let sql = format!("IF OBJECT_ID(@P1, 'U') IS NOT NULL DROP TABLE {q}");
        conn.execute(sql, &[&q.as_str()]).await.map_err(sql_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_write_s_shape_are_stages() {
        let p = "bridge_stage_0123456789abcdef_";
        assert_eq!(stage_run(p, &format!("{p}a1b2_p0_a17")), Some("a1b2"));
        for bad in [
            format!("{p}a1b2_p0_a"),
            format!("{p}_p0_a1"),
            format!("{p}A1_p0_a1"),
            format!("{p}r_p0_a1]; DROP TABLE x; --"),
            format!("{p}r_px_a1"),
            "bridge_stage_ffffffffffffffff_r_p0_a1".to_string(),
            "target".to_string(),
        ] {
            assert_eq!(stage_run(p, &bad), None, "{bad}");
        }
        let id = new_run_id();
        assert_eq!(id.len(), 12);
        assert!(stage_run(p, &format!("{p}{id}_p3_a9")).is_some());
    }

    #[test]
    fn users_write_ids_never_meet() {
        let a = scoped_write_id("alice", "job-1.run-7").unwrap();
        let b = scoped_write_id("bob", "job-1.run-7").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, scoped_write_id("alice", "job-1.run-7").unwrap());
        assert!(a.ends_with(":job-1.run-7") && a.len() == 12 + 11);
        check_id("scoped", &a).unwrap();
        check_id(
            "scoped",
            &scoped_write_id("alice", &"x".repeat(78)).unwrap(),
        )
        .unwrap();
        assert!(scoped_write_id("alice", &"x".repeat(79)).is_err());
        assert!(scoped_write_id("alice", "a b").is_err());
    }

    #[test]
    fn run_ids_and_stage_schemas_are_checked_in_one_place() {
        assert!(check_run_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "A1", "a-1", "a b", &"a".repeat(33), "é"] {
            assert!(
                check_run_id(bad).unwrap_err().starts_with("run_id '"),
                "{bad}"
            );
        }
        assert_eq!(check_stage_schema(" stage ").unwrap(), "stage");
        assert_eq!(
            check_stage_schema(&"é".repeat(128))
                .unwrap()
                .chars()
                .count(),
            128
        );
        for bad in ["", "   ", "a\nb", &"s".repeat(129)] {
            assert!(check_stage_schema(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_ids_are_ledger_keys_as_they_are() {
        assert!(check_id("write_id", "run-123:attempt.2_x").is_ok());
        for bad in ["", "has space", "a'b", &"x".repeat(91)] {
            let e = check_id("write_id", bad).unwrap_err();
            assert!(e.starts_with("write_id '"), "{e}");
        }
    }
}
