//! Built-ins about the server, the session and the catalog: the clock
//! (GETDATE, SYSDATETIME, ...), who is signed in (SUSER_SNAME, USER_NAME,
//! ...), the error a CATCH handles (ERROR_NUMBER, ...), DB_NAME/DB_ID,
//! OBJECT_ID/OBJECT_NAME, SCOPE_IDENTITY, Change Tracking's versions and
//! the PROPERTY functions, NEWID.

use sqlparser::ast::{Expr, Value as AstValue};

use super::super::{sql_string, Compiler, Scope, Typed};
use super::*;
use crate::engine::catalog::quote_str;
use crate::engine::error::SqlError;
use crate::types::{Len, SqlType};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::clock::Clock;
use crate::engine::convert::{convert, fmt_datetime, fmt_dto, to_storage, Overlong};

/// This family's rule for `n` (the name in upper case), or `None` when `n`
/// is not one of its built-ins.
pub(super) fn compile(
    c: &Compiler<'_, '_>,
    n: &str,
    args: &[Expr],
    scope: &Scope,
) -> Result<Option<Typed>, SqlError> {
    let nv128 = SqlType::NVarChar(Len::N(128));
    let t = match n {
        "GETDATE" | "CURRENT_TIMESTAMP" => {
            typed("__getdate()".into(), SqlType::DateTime).map(Typed::not_null)
        }
        "GETUTCDATE" => typed("__getutcdate()".into(), SqlType::DateTime).map(Typed::not_null),
        "SYSDATETIME" => {
            typed("__sysdatetime()".into(), SqlType::DateTime2(7)).map(Typed::not_null)
        }
        "SYSUTCDATETIME" => {
            typed("__sysutcdatetime()".into(), SqlType::DateTime2(7)).map(Typed::not_null)
        }
        "SYSDATETIMEOFFSET" => {
            typed("__sysdatetimeoffset()".into(), SqlType::DateTimeOffset(7)).map(Typed::not_null)
        }
        "CURRENT_DATE" => {
            typed("substr(__sysdatetime(), 1, 10)".into(), SqlType::Date).map(Typed::not_null)
        }
        "NEWID" => typed("__newid()".into(), SqlType::UniqueIdentifier).map(Typed::not_null),
        "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" | "SYSTEM_USER" if args.is_empty() => {
            typed(sql_string(c.ctx.login), nv128).map(Typed::not_null)
        }
        "USER_NAME" | "CURRENT_USER" | "SESSION_USER" | "USER" => {
            typed("'dbo'".into(), nv128).map(Typed::not_null)
        }
        "HOST_NAME" => typed("'bridge-sandbox'".into(), nv128),
        // SUSER_ID(login): the login's principal id, NULL when there is none.
        "SUSER_ID" => {
            need(n, args, 0, 1)?;
            let sql = match args.first() {
                Some(a) => {
                    let v = to_text(&c.value(a, scope)?);
                    format!(
                        "(SELECT CASE WHEN {v} = {me} COLLATE NOCASE THEN 1 ELSE (SELECT principal_id FROM __sb_logins WHERE name = {v}) END)",
                        v = v.sql,
                        me = sql_string(c.ctx.login)
                    )
                }
                None => "1".into(),
            };
            typed(sql, SqlType::Int)
        }
        // The error a CATCH block handles; NULL outside one.
        "ERROR_NUMBER" | "ERROR_SEVERITY" | "ERROR_STATE" | "ERROR_LINE" => {
            let v = c.ctx.caught.as_ref().map(|e| match n {
                "ERROR_NUMBER" => i64::from(e.number),
                "ERROR_SEVERITY" => i64::from(e.class),
                "ERROR_STATE" => i64::from(e.state),
                _ => 1,
            });
            typed(
                v.map(|v| v.to_string()).unwrap_or_else(|| "NULL".into()),
                SqlType::Int,
            )
        }
        "ERROR_MESSAGE" => typed(
            c.ctx
                .caught
                .as_ref()
                .map(|e| sql_string(&e.message))
                .unwrap_or_else(|| "NULL".into()),
            SqlType::NVarChar(Len::N(4000)),
        ),
        "ERROR_PROCEDURE" => typed("NULL".into(), nv128),
        "APP_NAME" => typed(sql_string(c.ctx.app_name), nv128),
        "DB_NAME" if args.is_empty() => typed(sql_string(c.ctx.db), nv128),
        // DB_NAME(database_id), DB_ID(name): learn.microsoft.com/sql/t-sql/functions/db-name-transact-sql
        "DB_NAME" => {
            need(n, args, 1, 1)?;
            let id = c.value(&args[0], scope)?;
            typed(
                format!(
                    "(SELECT name FROM __sb_databases WHERE database_id = {})",
                    int_arg(&id)
                ),
                nv128,
            )
        }
        "DB_ID" if args.len() == 1 => {
            let name = to_text(&c.value(&args[0], scope)?).sql;
            typed(
                format!("(SELECT database_id FROM __sb_databases WHERE name = {name})"),
                SqlType::SmallInt,
            )
        }
        "DB_ID" if args.is_empty() => typed(
            format!(
                "(SELECT database_id FROM __sb_databases WHERE name = {})",
                quote_str(c.ctx.db)
            ),
            SqlType::SmallInt,
        ),
        "SCOPE_IDENTITY" | "@@IDENTITY" => typed(
            "last_insert_rowid()".into(),
            SqlType::Decimal {
                precision: 38,
                scale: 0,
                numeric: true,
            },
        ),
        "OBJECT_ID" => {
            need(n, args, 1, 2)?;
            let text = match &args[0] {
                Expr::Value(v) => match &v.value {
                    AstValue::SingleQuotedString(s) | AstValue::NationalStringLiteral(s) => {
                        s.clone()
                    }
                    _ => return Err(unknown(n)),
                },
                _ => {
                    // Resolved when it runs: its text is known only then.
                    let t = c.value(&args[0], scope)?;
                    let db = quote_str(c.ctx.db);
                    let part = |i: u8| format!("__object_name_part({}, {i}, {db})", t.sql);
                    return typed(
                        format!(
                            "(SELECT object_id FROM ({ALL_OBJECTS}) WHERE db = {} COLLATE NOCASE \
                             AND schema = {} COLLATE NOCASE AND name = {} COLLATE NOCASE)",
                            part(0),
                            part(1),
                            part(2)
                        ),
                        SqlType::Int,
                    )
                    .map(Some);
                }
            };
            typed(object_id_sql(c, &text), SqlType::Int)
        }
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-current-version-transact-sql
        "CHANGE_TRACKING_CURRENT_VERSION" => {
            need(n, args, 0, 0)?;
            typed(
                format!(
                    "({})",
                    crate::engine::change_tracking::current_version_sql(c.ctx.db)
                ),
                SqlType::BigInt,
            )
        }
        // NULL when the database does not track or the table is not tracked.
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-min-valid-version-transact-sql
        "CHANGE_TRACKING_MIN_VALID_VERSION" => {
            need(n, args, 1, 1)?;
            let id = c.value(&args[0], scope)?;
            typed(
                format!(
                    "(SELECT min_valid_version FROM __sb_ct_tables WHERE object_id = {} AND db = {})",
                    int_arg(&id),
                    quote_str(c.ctx.db)
                ),
                SqlType::BigInt,
            )
        }
        // learn.microsoft.com/sql/relational-databases/system-functions/change-tracking-is-column-in-mask-transact-sql
        "CHANGE_TRACKING_IS_COLUMN_IN_MASK" => {
            need(n, args, 2, 2)?;
            let id = c.value(&args[0], scope)?;
            let mask = c.value(&args[1], scope)?;
            typed(
                format!("__ct_in_mask({}, {})", int_arg(&id), mask.sql),
                SqlType::Bit,
            )
        }
        // COLUMNPROPERTY(object_id, column, property): the column facts clients ask for.
        // learn.microsoft.com/sql/t-sql/functions/columnproperty-transact-sql
        "COLUMNPROPERTY" => {
            need(n, args, 3, 3)?;
            let id = c.value(&args[0], scope)?;
            let col = to_text(&c.value(&args[1], scope)?).sql;
            let prop = to_text(&c.value(&args[2], scope)?).sql;
            typed(
                format!(
                    "(SELECT CASE upper({prop}) WHEN 'COLUMNID' THEN ordinal WHEN 'ALLOWSNULL' THEN nullable \
                       WHEN 'ISIDENTITY' THEN is_identity WHEN 'ISCOMPUTED' THEN computed_sql IS NOT NULL \
                       WHEN 'PRECISION' THEN __type_part(type, 'sys_precision') WHEN 'SCALE' THEN __type_part(type, 'sys_scale') END \
                     FROM __sb_columns WHERE object_id = {} AND name = {col})",
                    int_arg(&id)
                ),
                SqlType::Int,
            )
        }
        // DATABASEPROPERTYEX(database, property): sql_variant in SQL Server,
        // nvarchar(128) here; the properties a client asks about (NULL for others).
        // learn.microsoft.com/sql/t-sql/functions/databasepropertyex-transact-sql
        "DATABASEPROPERTYEX" => {
            need(n, args, 2, 2)?;
            let db = to_text(&c.value(&args[0], scope)?).sql;
            let prop = to_text(&c.value(&args[1], scope)?).sql;
            typed(
                format!(
                    "(SELECT CASE upper({prop}) \
                       WHEN 'COLLATION' THEN coalesce(collation, 'SQL_Latin1_General_CP1_CI_AS') \
                       WHEN 'STATUS' THEN 'ONLINE' WHEN 'UPDATEABILITY' THEN 'READ_WRITE' \
                       WHEN 'USERACCESS' THEN 'MULTI_USER' WHEN 'RECOVERY' THEN 'SIMPLE' \
                       WHEN 'ISAUTOCLOSE' THEN '0' WHEN 'ISAUTOSHRINK' THEN '0' END \
                     FROM __sb_databases WHERE name = {db})"
                ),
                nv128,
            )
        }
        // SERVERPROPERTY(property): sql_variant in SQL Server, nvarchar(128) here.
        // learn.microsoft.com/sql/t-sql/functions/serverproperty-transact-sql
        "SERVERPROPERTY" => {
            need(n, args, 1, 1)?;
            let prop = to_text(&c.value(&args[0], scope)?).sql;
            typed(
                format!(
                    "(CASE upper({prop}) \
                       WHEN 'COLLATION' THEN 'SQL_Latin1_General_CP1_CI_AS' WHEN 'SQLCHARSETNAME' THEN 'iso_1' \
                       WHEN 'SQLSORTORDERNAME' THEN 'nocase_iso' WHEN 'SQLSORTORDER' THEN '52' \
                       WHEN 'LCID' THEN '1033' WHEN 'PRODUCTVERSION' THEN '16.0.1000.6' \
                       WHEN 'PRODUCTLEVEL' THEN 'RTM' WHEN 'EDITION' THEN 'Developer Edition (64-bit)' \
                       WHEN 'ENGINEEDITION' THEN '3' WHEN 'SERVERNAME' THEN 'bridge-sandbox' \
                       WHEN 'MACHINENAME' THEN 'bridge-sandbox' END)"
                ),
                nv128,
            )
        }
        // OBJECT_NAME(object_id [, database_id]): in the current database by default.
        // learn.microsoft.com/sql/t-sql/functions/object-name-transact-sql
        "OBJECT_NAME" => {
            need(n, args, 1, 2)?;
            let id = c.value(&args[0], scope)?;
            let db = match args.get(1) {
                Some(a) => format!(
                    "(SELECT name FROM __sb_databases WHERE database_id = {})",
                    int_arg(&c.value(a, scope)?)
                ),
                None => quote_str(c.ctx.db),
            };
            typed(
                format!(
                    "(SELECT name FROM ({ALL_OBJECTS}) WHERE object_id = {} AND db = {db})",
                    int_arg(&id)
                ),
                nv128,
            )
        }
        _ => return Ok(None),
    };
    t.map(Some)
}

/// The SQLite functions this family's rules emit, on each new connection.
pub(super) fn register(conn: &Connection, clock: &Clock) -> rusqlite::Result<()> {
    let nondet = FunctionFlags::SQLITE_UTF8;
    let c = clock.clone();
    conn.create_scalar_function("__getdate", 0, nondet, move |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&c.now_local().naive_local()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__getutcdate", 0, nondet, move |_| {
        let v = convert(
            ValueRef::Text(fmt_datetime(&c.now_utc()).as_bytes()),
            &SqlType::DateTime,
            Overlong::Truncate,
        )
        .map_err(|e| e.to_fn_error())?;
        Ok(to_storage(&v))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysdatetime", 0, nondet, move |_| {
        Ok(fmt_datetime(&c.now_local().naive_local()))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysutcdatetime", 0, nondet, move |_| {
        Ok(fmt_datetime(&c.now_utc()))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__sysdatetimeoffset", 0, nondet, move |_| {
        Ok(fmt_dto(&c.now_local().fixed_offset()))
    })?;
    conn.create_scalar_function("__newid", 0, nondet, |_| {
        Ok(uuid::Uuid::new_v4().to_string().to_ascii_uppercase())
    })?;
    Ok(())
}
