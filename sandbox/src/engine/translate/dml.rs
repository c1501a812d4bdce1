//! Queries and writes: SELECT (plain, INTO, variable assignment), INSERT
//! (VALUES, SELECT, DEFAULT VALUES), UPDATE and DELETE (with FROM/JOIN and
//! TOP) and MERGE. Expressions go through the typed compiler; every value
//! written goes through `__store`, which applies T-SQL's implicit conversion
//! to the column's type and raises SQL Server's errors.

use sqlparser::ast::{
    self, AssignmentTarget, Expr, FromTable, JoinConstraint, JoinOperator, MergeAction,
    MergeClauseKind, MergeInsertKind, ObjectName, Query, SelectItem, SetExpr, TableFactor,
    TableWithJoins,
};

use super::{ident_values, Ctx, DmlKind, DmlPlan, Plan};
use crate::engine::catalog::{quote_ident, quote_str, ColumnDef, TableMeta};
use crate::engine::compile::{self, scope::col_sql, Compiler, Scope, Source, Typed};
use crate::engine::error::SqlError;

fn store(expr: &str, col: &ColumnDef, meta: &TableMeta) -> String {
    format!(
        "__store({expr}, {}, {}, {})",
        quote_str(&col.ty.type_name()),
        quote_str(&meta.full_name()),
        quote_str(&col.name)
    )
}

/// A typed value stored into `col`.
fn store_typed(t: &Typed, col: &ColumnDef, meta: &TableMeta) -> String {
    if t.null_literal {
        return store("NULL", col, meta);
    }
    store(&super::assign_sql(t, &col.ty), col, meta)
}

fn dml(sqls: Vec<String>, meta: TableMeta, key_probe: Option<String>, kind: DmlKind) -> Plan {
    Plan::Dml(DmlPlan {
        sqls,
        setup: vec![],
        cleanup: vec![],
        target: Box::new(meta),
        key_probe,
        kind,
        set_columns: vec![],
    })
}

fn is_assignment_select(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            !s.projection.is_empty()
                && s.projection.iter().all(|p| {
                    matches!(p, SelectItem::ExprWithAlias { alias, .. } if alias.value.starts_with('@') && !alias.value.starts_with("@@"))
                })
        }
        _ => false,
    }
}

/// A SELECT statement: a result set, `SELECT ... INTO`, or `SELECT @v = ...`.
pub(super) fn plan_query(ctx: &Ctx<'_>, mut q: Query) -> Result<Plan, SqlError> {
    if is_assignment_select(&q) {
        return plan_assign(ctx, q);
    }
    let into = match q.body.as_mut() {
        SetExpr::Select(s) => s.into.take(),
        _ => None,
    };
    let c = Compiler::new(ctx);
    let r = c.query(&q, &Scope::default())?;
    if let Some(into) = into {
        return plan_select_into(ctx, into, r);
    }
    Ok(Plan::Query {
        sql: r.sql,
        columns: r.columns,
    })
}

/// `SELECT ... INTO t`: the new table takes the query's column names, types
/// and NULLability.
fn plan_select_into(
    ctx: &Ctx<'_>,
    into: ast::SelectInto,
    r: compile::CompiledQuery,
) -> Result<Plan, SqlError> {
    let target = match into.targets.first() {
        Some(Expr::Identifier(i)) => ObjectName::from(vec![i.clone()]),
        Some(Expr::CompoundIdentifier(p)) => ObjectName::from(p.clone()),
        _ => return Err(SqlError::syntax_near("INTO")),
    };
    for (i, c) in r.columns.iter().enumerate() {
        if c.name.is_empty() {
            return Err(SqlError::new(
                1038,
                5,
                15,
                format!(
                    "An object or column name is missing or empty. For SELECT INTO statements, verify each column has a name. (column {})",
                    i + 1
                ),
            )
            .batch());
        }
    }
    let (db, schema, name, temp) = match ctx.resolve(&target)? {
        super::Resolved::Temp(t) => ("tempdb".to_string(), "dbo".to_string(), t, true),
        super::Resolved::Table { db, schema, name } => (db, schema, name, false),
    };
    let columns: Vec<ColumnDef> = r
        .columns
        .iter()
        .zip(&r.bases)
        .map(|(c, b)| ColumnDef {
            nullable: c.nullable,
            identity: b.as_ref().filter(|b| b.identity).map(|_| (1, 1)),
            // SELECT INTO keeps each column's collation, a #temp table's too.
            collation: c.collation,
            ..ColumnDef::new(&c.name, c.sql_type)
        })
        .collect();
    let physical = if temp {
        format!("temp.{}", quote_ident(&name))
    } else {
        crate::engine::catalog::physical_name(&db, &schema, &name)
    };
    let meta = TableMeta {
        db,
        schema,
        name,
        physical,
        columns,
        pk_name: None,
        temp,
        object_id: None,
        unique_keys: vec![],
        checks: vec![],
        foreign_keys: vec![],
    };
    let cols: Vec<String> = meta.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let vals: Vec<String> = r.sql_names.iter().map(|n| col_sql("__s", n)).collect();
    let insert = format!(
        "INSERT INTO {} ({}) SELECT {} FROM ({}) AS \"__s\"",
        meta.physical,
        cols.join(", "),
        vals.join(", "),
        r.sql
    );
    Ok(Plan::SelectInto {
        table: Box::new(meta),
        insert,
    })
}

/// `SELECT @v = expr, ... [FROM ...]`: each row assigns in turn, reading
/// the variables' current values (`__var`), so `@s = @s + x` accumulates.
fn plan_assign(ctx: &Ctx<'_>, mut q: Query) -> Result<Plan, SqlError> {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return Err(SqlError::syntax_near("SELECT"));
    };
    let mut targets = Vec::new();
    for item in std::mem::take(&mut sel.projection) {
        let SelectItem::ExprWithAlias { expr, alias } = item else {
            continue;
        };
        targets.push(alias.value.clone());
        sel.projection.push(SelectItem::UnnamedExpr(expr));
    }
    let mut c = Compiler::new(ctx);
    c.vars_as_calls = true;
    let r = c.query(&q, &Scope::default())?;
    let mut sets = Vec::new();
    for ((name, col), sql_name) in targets.iter().zip(&r.columns).zip(&r.sql_names) {
        let ty = ctx
            .var_types
            .get(&name.to_ascii_lowercase())
            .copied()
            .ok_or_else(|| {
                SqlError::new(
                    137,
                    1,
                    15,
                    format!("Must declare the scalar variable \"{name}\"."),
                )
                .batch()
            })?;
        let v = Typed::new(col_sql("__a", sql_name), col.sql_type);
        sets.push(format!(
            "__setvar({}, {})",
            quote_str(name),
            super::assign_sql(&v, &ty)
        ));
    }
    Ok(Plan::Assign {
        sql: format!("SELECT {} FROM ({}) AS \"__a\"", sets.join(", "), r.sql),
    })
}

fn table_object_name(t: &ast::TableObject) -> Result<ObjectName, SqlError> {
    match t {
        ast::TableObject::TableName(n) => Ok(n.clone()),
        ast::TableObject::TableFunction(_) => Err(SqlError::unsupported("INSERT INTO FUNCTION")),
        #[allow(unreachable_patterns)]
        _ => Err(SqlError::unsupported("INSERT target")),
    }
}

fn insert_count_error(got: usize, want: usize) -> SqlError {
    if got > want {
        SqlError::new(
            110,
            1,
            15,
            "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .batch()
    } else {
        SqlError::new(
            109,
            1,
            15,
            "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .batch()
    }
}

fn identity_insert_on(ctx: &Ctx<'_>, meta: &TableMeta) -> bool {
    ctx.identity_insert
        .map(|t| t.eq_ignore_ascii_case(&meta.full_name()))
        .unwrap_or(false)
}

/// The columns an INSERT writes, as listed or every non-identity column.
pub(super) fn insert_targets(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    listed: &[String],
) -> Result<Vec<usize>, SqlError> {
    let mut targets: Vec<usize> = Vec::new();
    if listed.is_empty() {
        for (i, c) in meta.columns.iter().enumerate() {
            if c.computed.is_none()
                && !c.rowversion
                && (c.identity.is_none() || identity_insert_on(ctx, meta))
            {
                targets.push(i);
            }
        }
        return Ok(targets);
    }
    for cname in listed {
        let (i, col) = meta
            .column(cname)
            .ok_or_else(|| SqlError::invalid_column(cname))?;
        if col.computed.is_some() {
            return Err(computed_error(&col.name));
        }
        if col.identity.is_some() && !identity_insert_on(ctx, meta) {
            return Err(SqlError::new(
                544,
                1,
                16,
                format!(
                    "Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.",
                    meta.name
                ),
            ));
        }
        targets.push(i);
    }
    Ok(targets)
}

/// Whether an UPDATE (or MERGE's) may SET the column: not a computed
/// (271), identity (8102) or rowversion (272) one.
fn settable(cdef: &ColumnDef) -> Result<(), SqlError> {
    if cdef.computed.is_some() {
        return Err(computed_error(&cdef.name));
    }
    if cdef.identity.is_some() {
        return Err(SqlError::new(
            8102,
            1,
            16,
            format!("Cannot update identity column '{}'.", cdef.name),
        ));
    }
    if cdef.rowversion {
        return Err(SqlError::new(
            272,
            1,
            16,
            "Cannot update a timestamp column.",
        ));
    }
    Ok(())
}

/// Error 273: a value given for a rowversion column (only DEFAULT may be).
fn rowversion_insert_error() -> SqlError {
    SqlError::new(
        273,
        1,
        16,
        "Cannot insert an explicit value into a timestamp column. Use INSERT with a column list to exclude the timestamp column, or insert a DEFAULT into the timestamp column.",
    )
}

fn computed_error(col: &str) -> SqlError {
    SqlError::new(
        271,
        1,
        16,
        format!("The column \"{col}\" cannot be modified because it is either a computed column or is the result of a UNION operator."),
    )
}

/// A column's DEFAULT as the SQLite expression that stores it.
pub(crate) fn stored_default(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    col: &ColumnDef,
) -> Result<Option<String>, SqlError> {
    col.default
        .as_ref()
        .map(|d| {
            let t = super::scalar(ctx, &super::parse_expr(d)?)?;
            Ok(store_typed(&t, col, meta))
        })
        .transpose()
}

/// DEFAULTs of the columns an INSERT leaves out, compiled and stored.
pub(super) fn default_values(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    targets: &[usize],
) -> Result<Vec<(usize, String)>, SqlError> {
    let mut out = Vec::new();
    for (i, c) in meta.columns.iter().enumerate() {
        if targets.contains(&i) {
            continue;
        }
        if let Some(d) = &c.default {
            let t = super::scalar(ctx, &super::parse_expr(d)?)?;
            out.push((i, store_typed(&t, c, meta)));
        }
    }
    Ok(out)
}

pub(super) fn plan_insert(ctx: &Ctx<'_>, ins: ast::Insert) -> Result<Plan, SqlError> {
    if ins.output.is_some() || ins.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let name = table_object_name(&ins.table)?;
    let meta = ctx.table(&name)?;
    let listed: Vec<String> = ins
        .columns
        .iter()
        .map(|c| ident_values(c).pop().unwrap_or_default())
        .collect();
    let targets = insert_targets(ctx, &meta, &listed)?;
    let defaults = default_values(ctx, &meta, &targets)?;
    let col_list: Vec<String> = targets
        .iter()
        .chain(defaults.iter().map(|(i, _)| i))
        .map(|&i| quote_ident(&meta.columns[i].name))
        .collect();
    let default_vals: Vec<String> = defaults.iter().map(|(_, s)| s.clone()).collect();
    let Some(source) = ins.source else {
        // INSERT ... DEFAULT VALUES
        let sql = if col_list.is_empty() {
            format!("INSERT INTO {} DEFAULT VALUES", meta.physical)
        } else {
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                meta.physical,
                col_list.join(", "),
                default_vals.join(", ")
            )
        };
        return Ok(dml(vec![sql], meta, None, DmlKind::Insert));
    };
    let c = Compiler::new(ctx);
    let simple_values = source.with.is_none()
        && source.order_by.is_none()
        && source.limit_clause.is_none()
        && matches!(source.body.as_ref(), SetExpr::Values(_));
    if simple_values {
        let SetExpr::Values(values) = source.body.as_ref() else {
            return Err(SqlError::syntax_near("VALUES"));
        };
        let pk: Vec<usize> = meta
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.in_pk)
            .map(|(i, _)| i)
            .collect();
        let mut rows = Vec::new();
        let mut probe_rows = Vec::new();
        for row in &values.rows {
            if row.len() != targets.len() {
                return Err(insert_count_error(row.len(), targets.len()));
            }
            let mut vals = Vec::new();
            let mut key = Vec::new();
            for (expr, &ti) in row.iter().zip(&targets) {
                let col = &meta.columns[ti];
                let is_default = matches!(expr, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("DEFAULT") && i.quote_style.is_none());
                if col.rowversion && !is_default {
                    return Err(rowversion_insert_error());
                }
                let s = if is_default {
                    match &col.default {
                        Some(d) => {
                            store_typed(&super::scalar(ctx, &super::parse_expr(d)?)?, col, &meta)
                        }
                        None => store("NULL", col, &meta),
                    }
                } else {
                    store_typed(&c.value(expr, &Scope::default())?, col, &meta)
                };
                if pk.contains(&ti) {
                    key.push(s.clone());
                }
                vals.push(s);
            }
            if key.len() == pk.len() && !pk.is_empty() {
                probe_rows.push(key.join(", "));
            }
            vals.extend(default_vals.iter().cloned());
            rows.push(format!("({})", vals.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            meta.physical,
            col_list.join(", "),
            rows.join(", ")
        );
        let key_probe = (!probe_rows.is_empty()).then(|| {
            let rows: Vec<String> = probe_rows.iter().map(|r| format!("({r})")).collect();
            duplicate_key_probe(&meta, &pk, &format!("VALUES {}", rows.join(", ")))
        });
        return Ok(dml(vec![sql], meta, key_probe, DmlKind::Insert));
    }
    if targets.iter().any(|&t| meta.columns[t].rowversion) {
        return Err(rowversion_insert_error());
    }
    let r = c.query(&source, &Scope::default())?;
    if r.columns.len() != targets.len() {
        return Err(if r.columns.len() > targets.len() {
            SqlError::new(
                121,
                1,
                15,
                "The select list for the INSERT statement contains more items than the insert list. The number of SELECT values must match the number of INSERT columns.",
            )
            .batch()
        } else {
            SqlError::new(
                120,
                1,
                15,
                "The select list for the INSERT statement contains fewer items than the insert list. The number of SELECT values must match the number of INSERT columns.",
            )
            .batch()
        });
    }
    let stores: Vec<String> = targets
        .iter()
        .zip(r.sql_names.iter().zip(&r.columns))
        .map(|(&ti, (n, m))| {
            store_typed(
                &Typed::new(col_sql("__src", n), m.sql_type),
                &meta.columns[ti],
                &meta,
            )
        })
        .chain(default_vals.iter().cloned())
        .collect();
    let from = format!("FROM ({}) AS \"__src\"", r.sql);
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} {from}",
        meta.physical,
        col_list.join(", "),
        stores.join(", "),
    );
    // The key's values as the insert stores them, when the statement gives
    // every key column (an IDENTITY key is numbered by the engine).
    let pk: Vec<usize> = (0..meta.columns.len())
        .filter(|&i| meta.columns[i].in_pk)
        .collect();
    let key_stores: Option<Vec<&String>> = pk
        .iter()
        .map(|i| {
            let at = targets.iter().position(|t| t == i);
            at.or_else(|| {
                defaults
                    .iter()
                    .position(|(d, _)| d == i)
                    .map(|p| targets.len() + p)
            })
            .map(|p| &stores[p])
        })
        .collect();
    let key_probe = key_stores.filter(|k| !k.is_empty()).map(|k| {
        let k: Vec<&str> = k.iter().map(|s| s.as_str()).collect();
        duplicate_key_probe(&meta, &pk, &format!("SELECT {} {from}", k.join(", ")))
    });
    Ok(dml(vec![sql], meta, key_probe, DmlKind::Insert))
}

/// A query naming one key that made an INSERT fail with error 2627 (run
/// after the statement is rolled back): a key of the inserted rows (`rows`,
/// a VALUES list or SELECT giving the key columns in `pk`'s order) already
/// in the table, or given twice among them. GROUP BY rather than a pairwise
/// count: a large INSERT ... SELECT stays one sort.
fn duplicate_key_probe(meta: &TableMeta, pk: &[usize], rows: &str) -> String {
    let cols: Vec<String> = pk
        .iter()
        .map(|&i| quote_ident(&meta.columns[i].name))
        .collect();
    let kcols: Vec<String> = cols.iter().map(|c| format!("k.{c}")).collect();
    let cond: Vec<String> = cols.iter().map(|c| format!("t.{c} = k.{c}")).collect();
    format!(
        "WITH k({cols}) AS ({rows}) SELECT {kcols} FROM k GROUP BY {kcols} \
         HAVING COUNT(*) > 1 OR EXISTS (SELECT 1 FROM {table} AS t WHERE {cond}) LIMIT 1",
        cols = cols.join(", "),
        kcols = kcols.join(", "),
        table = meta.physical,
        cond = cond.join(" AND "),
    )
}

fn factor_matches(tf: &TableFactor, target: &[String]) -> bool {
    let TableFactor::Table { name, alias, .. } = tf else {
        return false;
    };
    if target.len() == 1 {
        if let Some(a) = alias {
            return a.name.value.eq_ignore_ascii_case(&target[0]);
        }
    }
    let parts = ident_values(name);
    parts.len() >= target.len()
        && parts[parts.len() - target.len()..]
            .iter()
            .zip(target)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

fn join_condition(op: &JoinOperator) -> Result<Option<Expr>, SqlError> {
    let c = match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => c,
        JoinOperator::CrossJoin(c) => c,
        _ => {
            return Err(SqlError::unsupported(
                "outer joins in UPDATE/DELETE ... FROM",
            ))
        }
    };
    match c {
        JoinConstraint::On(e) => Ok(Some(e.clone())),
        JoinConstraint::None => Ok(None),
        _ => Err(SqlError::unsupported("USING/NATURAL joins")),
    }
}

/// The target table of an UPDATE/DELETE, the other FROM tables, and the
/// join conditions that tied the target in.
type SplitFrom = (Option<TableFactor>, Vec<TableWithJoins>, Vec<Expr>);

/// Splits a FROM list into the target table (found by `target` alias/name)
/// and the rest, moving the target's join condition into `extra_where`.
fn split_target(from: Vec<TableWithJoins>, target: &[String]) -> Result<SplitFrom, SqlError> {
    let mut found = None;
    let mut rest = Vec::new();
    let mut conds = Vec::new();
    for mut twj in from {
        if found.is_none() && factor_matches(&twj.relation, target) {
            found = Some(twj.relation);
            if twj.joins.is_empty() {
                continue;
            }
            let first = twj.joins.remove(0);
            if let Some(c) = join_condition(&first.join_operator)? {
                conds.push(c);
            }
            rest.push(TableWithJoins {
                relation: first.relation,
                joins: twj.joins,
            });
            continue;
        }
        if found.is_none() {
            if let Some(pos) = twj
                .joins
                .iter()
                .position(|j| factor_matches(&j.relation, target))
            {
                let j = twj.joins.remove(pos);
                if let Some(c) = join_condition(&j.join_operator)? {
                    conds.push(c);
                }
                found = Some(j.relation);
            }
        }
        rest.push(twj);
    }
    Ok((found, rest, conds))
}

fn and_all(parts: Vec<String>) -> Option<String> {
    if parts.is_empty() {
        None
    } else {
        Some(
            parts
                .into_iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        )
    }
}

fn table_factor(name: ObjectName, alias: Option<ast::TableAlias>) -> TableFactor {
    TableFactor::Table {
        name,
        alias,
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

/// The write target in scope under the alias `sql_alias`.
fn target_scope(meta: &TableMeta, factor: &TableFactor, sql_alias: &str) -> Scope {
    let mut scope = Scope::default();
    let written = match factor {
        TableFactor::Table { name, alias, .. } => match alias {
            Some(a) => vec![vec![a.name.value.clone()]],
            None => vec![
                ident_values(name),
                vec![meta.db.clone(), meta.schema.clone(), meta.name.clone()],
            ],
        },
        _ => vec![vec![meta.name.clone()]],
    };
    scope.push(compile::table_source(meta, written, sql_alias));
    scope
}

pub(super) fn plan_update(ctx: &Ctx<'_>, upd: ast::Update) -> Result<Plan, SqlError> {
    if upd.output.is_some() || upd.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let TableFactor::Table {
        name: tname,
        alias: talias,
        ..
    } = &upd.table.relation
    else {
        return Err(SqlError::unsupported("UPDATE of a derived table"));
    };
    let target_parts = ident_values(tname);
    let from: Vec<TableWithJoins> = match upd.from {
        Some(ast::UpdateTableFromKind::BeforeSet(f))
        | Some(ast::UpdateTableFromKind::AfterSet(f)) => f,
        None => vec![],
    };
    let (found, rest, conds) = split_target(from, &target_parts)?;
    let target_factor = match found {
        Some(f) => f,
        None => table_factor(tname.clone(), talias.clone()),
    };
    let TableFactor::Table {
        name: real_name, ..
    } = &target_factor
    else {
        return Err(SqlError::unsupported("UPDATE of a derived table"));
    };
    let meta = ctx.table(real_name)?;
    let c = Compiler::new(ctx);
    let alias = "_w";
    let mut scope = target_scope(&meta, &target_factor, alias);
    let from_sql = compile::from_clause(&c, &rest, &mut scope)?;
    let mut sets = Vec::new();
    let mut set_columns = Vec::new();
    for a in &upd.assignments {
        let col = match &a.target {
            AssignmentTarget::ColumnName(n) => ident_values(n).pop().unwrap_or_default(),
            AssignmentTarget::Tuple(_) => return Err(SqlError::unsupported("tuple assignment")),
        };
        if col.starts_with('@') {
            return Err(SqlError::unsupported("UPDATE ... SET @variable"));
        }
        let (_, cdef) = meta
            .column(&col)
            .ok_or_else(|| SqlError::invalid_column(&col))?;
        settable(cdef)?;
        let v = c.value(&a.value, &scope)?;
        set_columns.push(cdef.name.clone());
        sets.push(format!(
            "{} = {}",
            quote_ident(&cdef.name),
            store_typed(&v, cdef, &meta)
        ));
    }
    let mut wheres = Vec::new();
    for cond in &conds {
        wheres.push(c.condition(cond, &scope)?);
    }
    if let Some(s) = &upd.selection {
        wheres.push(c.condition(s, &scope)?);
    }
    let mut sql = format!(
        "UPDATE {} AS {} SET {}",
        meta.physical,
        quote_ident(alias),
        sets.join(", ")
    );
    if !from_sql.is_empty() {
        sql.push_str(" FROM ");
        sql.push_str(&from_sql.join(", "));
    }
    if let Some(w) = and_all(wheres) {
        sql.push_str(" WHERE ");
        sql.push_str(&w);
    }
    let mut plan = dml(vec![sql], meta, None, DmlKind::Update);
    if let Plan::Dml(DmlPlan { set_columns: s, .. }) = &mut plan {
        *s = set_columns;
    }
    Ok(plan)
}

pub(super) fn plan_delete(
    ctx: &Ctx<'_>,
    del: ast::Delete,
    top: Option<String>,
) -> Result<Plan, SqlError> {
    if del.output.is_some() || del.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let mut from = match del.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    if let Some(using) = del.using {
        from.extend(using);
    }
    // `DELETE t FROM ...` names the target before FROM; otherwise the first FROM table is.
    let target_parts = match del.tables.first() {
        Some(n) => ident_values(n),
        None => match from.first().map(|t| &t.relation) {
            Some(TableFactor::Table { name, alias, .. }) => match alias {
                Some(a) => vec![a.name.value.clone()],
                None => ident_values(name),
            },
            _ => return Err(SqlError::syntax_near("DELETE")),
        },
    };
    let (found, rest, conds) = split_target(from, &target_parts)?;
    let target_factor = match found {
        Some(f) => f,
        None => {
            let n = ObjectName::from(
                target_parts
                    .iter()
                    .map(|p| ast::Ident::new(p.clone()))
                    .collect::<Vec<_>>(),
            );
            table_factor(n, None)
        }
    };
    let TableFactor::Table {
        name: real_name, ..
    } = &target_factor
    else {
        return Err(SqlError::unsupported("DELETE from a derived table"));
    };
    let meta = ctx.table(real_name)?;
    let c = Compiler::new(ctx);
    let alias = "_w";
    let mut scope = target_scope(&meta, &target_factor, alias);
    let from_sql = compile::from_clause(&c, &rest, &mut scope)?;
    let mut wheres = Vec::new();
    for cond in &conds {
        wheres.push(c.condition(cond, &scope)?);
    }
    if let Some(s) = &del.selection {
        wheres.push(c.condition(s, &scope)?);
    }
    let limit = match top {
        Some(t) if t.starts_with('@') => {
            format!(
                " LIMIT {}",
                super::scalar(ctx, &super::parse_expr(&t)?)?.sql
            )
        }
        Some(t) => format!(" LIMIT {t}"),
        None => String::new(),
    };
    let w = and_all(wheres)
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    let sql = if from_sql.is_empty() && limit.is_empty() {
        format!("DELETE FROM {} AS {}{w}", meta.physical, quote_ident(alias))
    } else {
        let others = if from_sql.is_empty() {
            String::new()
        } else {
            format!(", {}", from_sql.join(", "))
        };
        format!(
            "DELETE FROM {} WHERE rowid IN (SELECT {}.rowid FROM {} AS {}{others}{w}{limit})",
            meta.physical,
            quote_ident(alias),
            meta.physical,
            quote_ident(alias),
        )
    };
    Ok(dml(vec![sql], meta, None, DmlKind::Delete))
}

pub(super) fn plan_merge(ctx: &Ctx<'_>, m: ast::Merge) -> Result<Plan, SqlError> {
    if m.output.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let TableFactor::Table { name, .. } = &m.table else {
        return Err(SqlError::unsupported("MERGE into a derived table"));
    };
    let meta = ctx.table(name)?;
    let c = Compiler::new(ctx);
    let (qt, qs) = ("_mt", "_ms");
    let tmp = "temp.\"__merge_src\"";
    // The source, materialised first so every clause sees the rows as they were.
    let mut src_scope = Scope::default();
    let src_sql = compile::from_clause(
        &c,
        &[TableWithJoins {
            relation: m.source.clone(),
            joins: vec![],
        }],
        &mut src_scope,
    )?;
    let src = src_scope
        .current()
        .first()
        .cloned()
        .ok_or_else(|| SqlError::syntax_near("USING"))?;
    let cols: Vec<String> = src
        .columns
        .iter()
        .map(|col| col_sql(&src.sql_alias, &col.name))
        .collect();
    let names: Vec<String> = src
        .columns
        .iter()
        .map(|col| quote_ident(&col.name))
        .collect();
    let setup = vec![
        format!("DROP TABLE IF EXISTS {tmp}"),
        format!("CREATE TABLE {tmp} ({})", names.join(", ")),
        format!(
            "INSERT INTO {tmp} SELECT {} FROM {}",
            cols.join(", "),
            src_sql.join(", ")
        ),
    ];
    let mut scope = target_scope(&meta, &m.table, qt);
    scope.push(Source {
        sql_alias: qs.to_string(),
        ..src
    });
    let on = c.condition(&m.on, &scope)?;
    let mut setup = setup;
    // Rows of the source with no match, captured before anything changes.
    setup.push("DROP TABLE IF EXISTS temp.\"__merge_new\"".into());
    setup.push(format!(
        "CREATE TABLE temp.\"__merge_new\" AS SELECT * FROM {tmp} AS {qs} WHERE NOT EXISTS (SELECT 1 FROM {} AS {qt} WHERE {on})",
        meta.physical
    ));
    // A target row that matches several source rows cannot be updated or
    // deleted by them (error 8672), whichever clause would act on it.
    if m.clauses
        .iter()
        .any(|c| matches!(c.clause_kind, MergeClauseKind::Matched))
    {
        setup.push(format!(
            "SELECT __merge_twice() FROM (SELECT 1 FROM {} AS {qt} JOIN {tmp} AS {qs} ON {on} \
             GROUP BY {qt}.rowid HAVING COUNT(*) > 1 LIMIT 1)",
            meta.physical
        ));
    }
    let mut sqls = Vec::new();
    let mut set_columns: Vec<String> = Vec::new();
    let mut kinds = (false, false, false);
    for clause in &m.clauses {
        let pred = match &clause.predicate {
            Some(p) => Some(c.condition(p, &scope)?),
            None => None,
        };
        match &clause.action {
            MergeAction::Insert(_) => kinds.0 = true,
            MergeAction::Update(_) => kinds.1 = true,
            MergeAction::Delete { .. } => kinds.2 = true,
            _ => {}
        }
        match (&clause.clause_kind, &clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(u)) => {
                let ast::MergeUpdateKind::Set(assignments) = &u.kind else {
                    return Err(SqlError::unsupported("MERGE ... UPDATE SET *"));
                };
                let mut sets = Vec::new();
                for a in assignments {
                    let col = match &a.target {
                        AssignmentTarget::ColumnName(n) => {
                            ident_values(n).pop().unwrap_or_default()
                        }
                        AssignmentTarget::Tuple(_) => {
                            return Err(SqlError::unsupported("tuple assignment"))
                        }
                    };
                    let (_, cdef) = meta
                        .column(&col)
                        .ok_or_else(|| SqlError::invalid_column(&col))?;
                    settable(cdef)?;
                    set_columns.push(cdef.name.clone());
                    let v = c.value(&a.value, &scope)?;
                    sets.push(format!(
                        "{} = {}",
                        quote_ident(&cdef.name),
                        store_typed(&v, cdef, &meta)
                    ));
                }
                let w = and_all([Some(on.clone()), pred].into_iter().flatten().collect())
                    .unwrap_or_default();
                sqls.push(format!(
                    "UPDATE {} AS {qt} SET {} FROM {tmp} AS {qs} WHERE {w}",
                    meta.physical,
                    sets.join(", ")
                ));
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                let w = and_all([Some(on.clone()), pred].into_iter().flatten().collect())
                    .unwrap_or_default();
                sqls.push(format!(
                    "DELETE FROM {} WHERE rowid IN (SELECT {qt}.rowid FROM {} AS {qt} JOIN {tmp} AS {qs} ON {w})",
                    meta.physical, meta.physical
                ));
            }
            (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(ins),
            ) => {
                let listed: Vec<String> = ins
                    .columns
                    .iter()
                    .map(|c| ident_values(c).pop().unwrap_or_default())
                    .collect();
                let targets = insert_targets(ctx, &meta, &listed)?;
                if targets.iter().any(|&t| meta.columns[t].rowversion) {
                    return Err(rowversion_insert_error());
                }
                let MergeInsertKind::Values(values) = &ins.kind else {
                    return Err(SqlError::unsupported("MERGE ... INSERT ROW"));
                };
                let row = values
                    .rows
                    .first()
                    .map(|p| p.content.clone())
                    .unwrap_or_default();
                if row.len() != targets.len() {
                    return Err(insert_count_error(row.len(), targets.len()));
                }
                let defaults = default_values(ctx, &meta, &targets)?;
                let mut vals = Vec::new();
                let mut cols = Vec::new();
                for (e, &ti) in row.iter().zip(&targets) {
                    let cdef = &meta.columns[ti];
                    let v = c.value(e, &scope)?;
                    vals.push(store_typed(&v, cdef, &meta));
                    cols.push(quote_ident(&cdef.name));
                }
                for (i, d) in defaults {
                    cols.push(quote_ident(&meta.columns[i].name));
                    vals.push(d);
                }
                sqls.push(format!(
                    "INSERT INTO {} ({}) SELECT {} FROM temp.\"__merge_new\" AS {qs}{}",
                    meta.physical,
                    cols.join(", "),
                    vals.join(", "),
                    pred.map(|p| format!(" WHERE {p}")).unwrap_or_default()
                ));
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => {
                sqls.push(format!(
                    "DELETE FROM {} AS {qt} WHERE NOT EXISTS (SELECT 1 FROM {tmp} AS {qs} WHERE {on}){}",
                    meta.physical,
                    pred.map(|p| format!(" AND ({p})")).unwrap_or_default()
                ));
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u)) => {
                let ast::MergeUpdateKind::Set(assignments) = &u.kind else {
                    return Err(SqlError::unsupported("MERGE ... UPDATE SET *"));
                };
                let tscope = target_scope(&meta, &m.table, qt);
                let mut sets = Vec::new();
                for a in assignments {
                    let col = match &a.target {
                        AssignmentTarget::ColumnName(n) => {
                            ident_values(n).pop().unwrap_or_default()
                        }
                        AssignmentTarget::Tuple(_) => {
                            return Err(SqlError::unsupported("tuple assignment"))
                        }
                    };
                    let (_, cdef) = meta
                        .column(&col)
                        .ok_or_else(|| SqlError::invalid_column(&col))?;
                    settable(cdef)?;
                    set_columns.push(cdef.name.clone());
                    let v = c.value(&a.value, &tscope)?;
                    sets.push(format!(
                        "{} = {}",
                        quote_ident(&cdef.name),
                        store_typed(&v, cdef, &meta)
                    ));
                }
                sqls.push(format!(
                    "UPDATE {} AS {qt} SET {} WHERE NOT EXISTS (SELECT 1 FROM {tmp} AS {qs} WHERE {on}){}",
                    meta.physical,
                    sets.join(", "),
                    pred.map(|p| format!(" AND ({p})")).unwrap_or_default()
                ));
            }
            (kind, _) => return Err(SqlError::unsupported(&format!("MERGE WHEN {kind}"))),
        }
    }
    Ok(Plan::Dml(DmlPlan {
        sqls,
        setup,
        cleanup: vec![
            format!("DROP TABLE IF EXISTS {tmp}"),
            "DROP TABLE IF EXISTS temp.\"__merge_new\"".into(),
        ],
        target: Box::new(meta),
        key_probe: None,
        kind: DmlKind::Merge {
            insert: kinds.0,
            update: kinds.1,
            delete: kinds.2,
        },
        set_columns,
    }))
}
