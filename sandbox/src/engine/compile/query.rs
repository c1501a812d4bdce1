//! Queries: WITH, SELECT (FROM/JOIN, WHERE, GROUP BY, HAVING, DISTINCT,
//! TOP), set operations, VALUES, ORDER BY and OFFSET/FETCH. Result column
//! types follow the expressions' types; a UNION's columns take the rules of
//! the precision page's UNION row and the longer string length.

use std::collections::HashMap;

use sqlparser::ast::{
    self, Expr, JoinConstraint, JoinOperator, Query, Select, SelectItem, SetExpr, SetOperator,
    SetQuantifier, TableFactor, TableWithJoins, TopQuantity, Value as AstValue,
};

use super::scope::{col_sql, Source, SourceCol};
use super::{convert_sql, CompiledQuery, Compiler, CteDef, Label, Recursing, Scope, Typed};
use crate::engine::catalog::quote_ident;
use crate::engine::collation;
use crate::engine::error::SqlError;
use crate::types::ColumnMeta;

/// A recursive CTE's hidden last column: each row's recursion level.
const LEVEL: &str = "__recursion_level";

pub fn compile_query(
    c: &Compiler<'_, '_>,
    q: &Query,
    outer: &Scope,
) -> Result<CompiledQuery, SqlError> {
    if q.for_clause.is_some() {
        return Err(SqlError::unsupported("FOR XML / FOR JSON"));
    }
    c.nested(|| compile_level(c, q, outer))
}

fn compile_level(
    c: &Compiler<'_, '_>,
    q: &Query,
    outer: &Scope,
) -> Result<CompiledQuery, SqlError> {
    let has_top = matches!(q.body.as_ref(), SetExpr::Select(s) if s.top.is_some());
    if c.depth.get() > 1
        && q.order_by.is_some()
        && !has_top
        && q.limit_clause.is_none()
        && q.fetch.is_none()
    {
        return Err(SqlError::new(
            1033,
            1,
            15,
            "The ORDER BY clause is invalid in views, inline functions, derived tables, subqueries, and common table expressions, unless TOP, OFFSET or FOR XML is also specified.",
        )
        .batch());
    }
    let mut with_sql = String::new();
    let pushed = q.with.is_some();
    if let Some(with) = &q.with {
        c.ctes.borrow_mut().push(HashMap::new());
        let mut parts = Vec::new();
        let mut recursive = false;
        for cte in &with.cte_tables {
            let name = cte.alias.name.value.clone();
            let (def, sql, rec) = compile_cte(c, &name, cte, outer)?;
            recursive |= rec;
            let mut cols: Vec<String> = def
                .columns
                .iter()
                .map(|col| quote_ident(&col.name))
                .collect();
            if rec {
                cols.push(quote_ident(LEVEL));
            }
            parts.push(format!("{}({}) AS ({sql})", def.sql_name, cols.join(", ")));
            if let Some(frame) = c.ctes.borrow_mut().last_mut() {
                frame.insert(name.to_ascii_lowercase(), def);
            }
        }
        with_sql = format!(
            "WITH {}{} ",
            if recursive { "RECURSIVE " } else { "" },
            parts.join(", ")
        );
        c.cte_sql.borrow_mut().push((recursive, parts));
    }
    let result = compile_body(c, q, outer);
    if pushed {
        c.ctes.borrow_mut().pop();
        c.cte_sql.borrow_mut().pop();
    }
    let mut r = result?;
    r.sql = format!("{with_sql}{}", r.sql);
    Ok(r)
}

/// One CTE: its columns (from the anchor member when it refers to itself)
/// and SQL. Returns whether it is recursive.
fn compile_cte(
    c: &Compiler<'_, '_>,
    name: &str,
    cte: &ast::Cte,
    outer: &Scope,
) -> Result<(CteDef, String, bool), SqlError> {
    let sql_name = quote_ident(&format!("cte_{}_{}", name, c.alias()));
    let rename = |cols: &[ColumnMeta]| -> Result<Vec<SourceCol>, SqlError> {
        let names: Vec<String> = if cte.alias.columns.is_empty() {
            cols.iter().map(|m| m.name.clone()).collect()
        } else {
            if cte.alias.columns.len() != cols.len() {
                return Err(SqlError::new(
                    8158,
                    1,
                    16,
                    format!("'{name}' has more columns than were specified in the column list."),
                )
                .batch());
            }
            cte.alias
                .columns
                .iter()
                .map(|c| c.name.value.clone())
                .collect()
        };
        check_names(name, &names)?;
        Ok(cols
            .iter()
            .zip(names)
            .map(|(m, n)| SourceCol {
                name: n,
                ty: m.sql_type,
                nullable: m.nullable,
                identity: false,
                base: false,
                collation: m.collation,
            })
            .collect())
    };
    let self_ref = references(&cte.query, name);
    if !self_ref {
        let q = compile_query(c, &cte.query, outer)?;
        let columns = rename(&q.columns)?;
        let sql = project_as(&q, &columns);
        return Ok((CteDef { sql_name, columns }, sql, false));
    }
    // Recursive: the anchor member(s) fix the column types.
    let SetExpr::SetOperation {
        left,
        right,
        op,
        set_quantifier,
    } = cte.query.body.as_ref()
    else {
        return Err(SqlError::new(
            252,
            1,
            16,
            format!("Recursive common table expression '{name}' does not contain a top-level UNION ALL operator."),
        )
        .batch());
    };
    if *op != SetOperator::Union || !matches!(set_quantifier, SetQuantifier::All) {
        return Err(SqlError::new(
            252,
            1,
            16,
            format!("Recursive common table expression '{name}' does not contain a top-level UNION ALL operator."),
        )
        .batch());
    }
    let anchor = compile_set(c, left, outer, None)?;
    let columns = rename(&anchor.columns)?;
    if let Some(frame) = c.ctes.borrow_mut().last_mut() {
        frame.insert(
            name.to_ascii_lowercase(),
            CteDef {
                sql_name: sql_name.clone(),
                columns: columns.clone(),
            },
        );
    }
    // The recursive member carries each row's recursion level (the
    // anchor's rows are level 0) in a column of its own, checked against
    // the statement's MAXRECURSION as the row is made; SQLite keeps no depth.
    let saved = c.recursing.replace(Some(Recursing {
        cte: name.to_ascii_lowercase(),
        depth: c.depth.get(),
        found: None,
        carried: false,
    }));
    let rec = compile_set(c, right, outer, None);
    let state = c.recursing.replace(saved);
    let rec = rec?;
    if !state.is_some_and(|s| s.carried) {
        // The reference is inside a subquery or derived table
        // (https://learn.microsoft.com/en-us/sql/t-sql/queries/with-common-table-expression-transact-sql#guidelines-for-defining-and-using-recursive-common-table-expressions).
        return Err(SqlError::new(
            465,
            1,
            16,
            "Recursive references are not allowed in subqueries.",
        )
        .batch());
    }
    if rec.columns.len() != columns.len() {
        return Err(set_count_error());
    }
    for (a, b) in columns.iter().zip(&rec.columns) {
        if a.ty != b.sql_type {
            return Err(SqlError::new(
                240,
                1,
                16,
                format!(
                    "Types don't match between the anchor and the recursive part in column \"{}\" of recursive query \"{name}\".",
                    a.name
                ),
            )
            .batch());
        }
    }
    // The CTE's column list (`name(cols, level) AS (...)`) names the
    // members' columns by position, so the recursive member is not wrapped
    // to rename them: SQLite refuses a recursive reference inside a
    // subquery ("circular reference",
    // https://www.sqlite.org/lang_with.html#recursive_common_table_expressions).
    // The anchor, which cannot refer to the CTE, is wrapped to add level 0.
    let sql = format!("SELECT *, 0 FROM ({}) UNION ALL {}", anchor.sql, rec.sql);
    Ok((CteDef { sql_name, columns }, sql, true))
}

/// Whether `q` mentions a table named `name` (a CTE referring to itself).
fn references(q: &Query, name: &str) -> bool {
    let mut found = false;
    let _ = ast::visit_relations(q, |r| {
        if r.0.len() == 1
            && r.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case(name))
        {
            found = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// `q` with its output columns renamed to `cols` (a CTE's or derived table's names).
fn project_as(q: &CompiledQuery, cols: &[SourceCol]) -> String {
    if q.sql_names.iter().zip(cols).all(|(a, b)| a == &b.name) {
        return q.sql.clone();
    }
    let list: Vec<String> = q
        .sql_names
        .iter()
        .zip(cols)
        .map(|(from, to)| format!("{} AS {}", col_sql("__r", from), quote_ident(&to.name)))
        .collect();
    format!("SELECT {} FROM ({}) AS \"__r\"", list.join(", "), q.sql)
}

fn check_names(owner: &str, names: &[String]) -> Result<(), SqlError> {
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            return Err(SqlError::new(
                8155,
                2,
                16,
                format!(
                    "No column name was specified for column {} of '{owner}'.",
                    i + 1
                ),
            )
            .batch());
        }
        if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(SqlError::new(
                8156,
                1,
                16,
                format!("The column '{n}' was specified multiple times for '{owner}'."),
            )
            .batch());
        }
    }
    Ok(())
}

fn set_count_error() -> SqlError {
    SqlError::new(
        205,
        1,
        16,
        "All queries combined using a UNION, INTERSECT or EXCEPT operator must have an equal number of expressions in their target lists.",
    )
    .batch()
}

/// The query body with the query's ORDER BY, TOP and OFFSET/FETCH.
fn compile_body(c: &Compiler<'_, '_>, q: &Query, outer: &Scope) -> Result<CompiledQuery, SqlError> {
    let tail = Tail::of(c, q, outer)?;
    match q.body.as_ref() {
        SetExpr::Select(s) => compile_select(c, s, outer, Some(q), &tail),
        other => {
            let mut r = compile_set(c, other, outer, None)?;
            // ORDER BY of a set operation names output columns (or ordinals).
            if let Some(ob) = &q.order_by {
                let items = order_by_outputs(&r, ob)?;
                r.sql = format!("{} ORDER BY {}", r.sql, items.join(", "));
            }
            r.sql.push_str(&tail.limit_sql());
            Ok(r)
        }
    }
}

/// TOP / OFFSET / FETCH of one query level, as SQLite LIMIT/OFFSET.
#[derive(Default)]
struct Tail {
    limit: Option<String>,
    offset: Option<String>,
}

impl Tail {
    fn of(c: &Compiler<'_, '_>, q: &Query, outer: &Scope) -> Result<Tail, SqlError> {
        let mut t = Tail::default();
        if let Some(ast::LimitClause::LimitOffset { limit, offset, .. }) = &q.limit_clause {
            if let Some(l) = limit {
                t.limit = Some(c.value(l, outer)?.sql);
            }
            if let Some(o) = offset {
                t.offset = Some(c.value(&o.value, outer)?.sql);
            }
        }
        if let Some(f) = &q.fetch {
            if f.percent || f.with_ties {
                return Err(SqlError::unsupported("FETCH ... PERCENT / WITH TIES"));
            }
            if let Some(n) = &f.quantity {
                t.limit = Some(c.value(n, outer)?.sql);
            }
        }
        Ok(t)
    }

    fn limit_sql(&self) -> String {
        match (&self.limit, &self.offset) {
            (None, None) => String::new(),
            (Some(l), None) => format!(" LIMIT {l}"),
            (l, Some(o)) => format!(" LIMIT {} OFFSET {o}", l.as_deref().unwrap_or("-1")),
        }
    }
}

fn order_by_outputs(r: &CompiledQuery, ob: &ast::OrderBy) -> Result<Vec<String>, SqlError> {
    let ast::OrderByKind::Expressions(items) = &ob.kind else {
        return Err(SqlError::syntax_near("ALL"));
    };
    items
        .iter()
        .map(|o| {
            let idx = match &o.expr {
                Expr::Value(v) => match &v.value {
                    AstValue::Number(n, _) => n.parse::<usize>().ok().filter(|i| *i >= 1 && *i <= r.columns.len()).map(|i| i - 1),
                    _ => None,
                },
                Expr::Identifier(i) => r
                    .columns
                    .iter()
                    .position(|m| m.name.eq_ignore_ascii_case(&i.value)),
                Expr::CompoundIdentifier(p) => p.last().and_then(|i| {
                    r.columns
                        .iter()
                        .position(|m| m.name.eq_ignore_ascii_case(&i.value))
                }),
                _ => None,
            };
            let Some(i) = idx else {
                return Err(SqlError::new(
                    104,
                    1,
                    16,
                    "ORDER BY items must appear in the select list if the statement contains a UNION, INTERSECT or EXCEPT operator.",
                )
                .batch());
            };
            let dir = match o.options.sort {
                Some(ast::OrderBySort::Desc) => " DESC",
                _ => "",
            };
            let key = match &r.columns[i].collation {
                Some(coll) => collation::collate(&(i + 1).to_string(), coll),
                None => (i + 1).to_string(),
            };
            Ok(format!("{key}{dir}"))
        })
        .collect()
}

/// A set expression (a branch of UNION/EXCEPT/INTERSECT, or the body of a
/// recursive CTE member).
fn compile_set(
    c: &Compiler<'_, '_>,
    body: &SetExpr,
    outer: &Scope,
    _names: Option<&[String]>,
) -> Result<CompiledQuery, SqlError> {
    match body {
        SetExpr::Select(s) => compile_select(c, s, outer, None, &Tail::default()),
        SetExpr::Query(q) => {
            let r = compile_query(c, q, outer)?;
            // A parenthesized branch with its own ORDER BY/LIMIT is a subquery to SQLite.
            let cols: Vec<String> = r.sql_names.iter().map(|n| col_sql("__p", n)).collect();
            Ok(CompiledQuery {
                sql: format!("SELECT {} FROM ({}) AS \"__p\"", cols.join(", "), r.sql),
                ..r
            })
        }
        SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } => {
            let l = compile_set(c, left, outer, None)?;
            let r = compile_set(c, right, outer, None)?;
            if l.columns.len() != r.columns.len() {
                return Err(set_count_error());
            }
            let all = matches!(set_quantifier, SetQuantifier::All);
            let mut columns = Vec::new();
            let mut labels = Vec::new();
            for (i, (a, b)) in l.columns.iter().zip(&r.columns).enumerate() {
                let ty = super::rules::unify(&[Some(a.sql_type), Some(b.sql_type)])?;
                // UNION, EXCEPT and INTERSECT compare strings: a conflict is
                // an error; UNION ALL leaves it unresolved (collation
                // precedence page).
                let (la, lb) = (l.labels[i], r.labels[i]);
                let label = match collation::combine(la, lb) {
                    Ok(Label::Conflict(x, y)) if !all || *op != SetOperator::Union => {
                        return Err(collation::conflict(&x, &y, "UNION"))
                    }
                    Ok(label) => label,
                    Err((x, y)) => return Err(collation::conflict(&x, &y, "UNION")),
                };
                let coll = ty.is_string().then(|| {
                    collation::of(label, c.default_collation()).unwrap_or(c.default_collation())
                });
                columns.push(ColumnMeta {
                    name: a.name.clone(),
                    sql_type: ty,
                    nullable: a.nullable || b.nullable,
                    identity: false,
                    updateable: false,
                    collation: coll,
                });
                labels.push(label);
            }
            let keyword = match (op, all) {
                (SetOperator::Union, true) => "UNION ALL",
                (SetOperator::Union, false) => "UNION",
                (SetOperator::Except, _) => "EXCEPT",
                (SetOperator::Intersect, _) => "INTERSECT",
                (other, _) => return Err(SqlError::syntax_near(&other.to_string())),
            };
            let sql_names: Vec<String> = (1..=columns.len()).map(|i| format!("__u{i}")).collect();
            let wrap = |q: &CompiledQuery| -> String {
                let list: Vec<String> = q
                    .sql_names
                    .iter()
                    .zip(&q.columns)
                    .zip(columns.iter().zip(&sql_names))
                    .map(|((n, m), (to, out))| {
                        let v = Typed::new(col_sql("__b", n), m.sql_type);
                        let conv = convert_sql(&v, &to.sql_type);
                        match &to.collation {
                            Some(coll) => {
                                format!(
                                    "{} AS {}",
                                    collation::collate(&conv, coll),
                                    quote_ident(out)
                                )
                            }
                            None => format!("{conv} AS {}", quote_ident(out)),
                        }
                    })
                    .collect();
                format!("SELECT {} FROM ({}) AS \"__b\"", list.join(", "), q.sql)
            };
            let sql = format!("{} {keyword} {}", wrap(&l), wrap(&r));
            Ok(CompiledQuery {
                sql,
                bases: vec![None; columns.len()],
                columns,
                sql_names,
                labels,
            })
        }
        SetExpr::Values(v) => compile_values(c, v, outer),
        other => Err(SqlError::syntax_near(
            other.to_string().split_whitespace().next().unwrap_or(""),
        )),
    }
}

/// A table value constructor: each column's type unifies its rows'.
fn compile_values(
    c: &Compiler<'_, '_>,
    v: &ast::Values,
    outer: &Scope,
) -> Result<CompiledQuery, SqlError> {
    let mut rows: Vec<Vec<Typed>> = Vec::new();
    for r in &v.rows {
        rows.push(
            r.iter()
                .map(|e| c.value(e, outer))
                .collect::<Result<_, _>>()?,
        );
    }
    let width = rows.first().map(Vec::len).unwrap_or(0);
    if rows.iter().any(|r| r.len() != width) {
        return Err(SqlError::new(
            10709,
            1,
            16,
            "The number of columns for each row in a table value constructor must be the same.",
        )
        .batch());
    }
    let mut columns = Vec::new();
    let mut labels = Vec::new();
    for i in 0..width {
        let items: Vec<&Typed> = rows.iter().map(|r| &r[i]).collect();
        let ty = super::operators::unify(&items)?;
        let label = super::operators::unify_labels(&items, "UNION")?;
        columns.push(ColumnMeta {
            name: String::new(),
            sql_type: ty,
            nullable: items.iter().any(|t| t.nullable),
            identity: false,
            updateable: false,
            collation: ty.is_string().then(|| {
                collation::of(label, c.default_collation()).unwrap_or(c.default_collation())
            }),
        });
        labels.push(label);
    }
    let sql_names: Vec<String> = (1..=width).map(|i| format!("__c{i}")).collect();
    let selects: Vec<String> = rows
        .iter()
        .map(|r| {
            let list: Vec<String> = r
                .iter()
                .zip(&columns)
                .zip(&sql_names)
                .map(|((t, m), n)| format!("{} AS {}", convert_sql(t, &m.sql_type), quote_ident(n)))
                .collect();
            format!("SELECT {}", list.join(", "))
        })
        .collect();
    Ok(CompiledQuery {
        sql: selects.join(" UNION ALL "),
        bases: vec![None; width],
        columns,
        sql_names,
        labels,
    })
}

/// One output column of a SELECT.
struct Output {
    name: String,
    typed: Typed,
}

fn output_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) if !i.value.starts_with('@') => i.value.clone(),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Nested(inner) => output_name(inner),
        _ => String::new(),
    }
}

fn compile_select(
    c: &Compiler<'_, '_>,
    s: &Select,
    outer: &Scope,
    query: Option<&Query>,
    tail: &Tail,
) -> Result<CompiledQuery, SqlError> {
    let mut scope = outer.child();
    let mut from_sql = Vec::new();
    for twj in &s.from {
        from_sql.push(from_item(c, twj, outer, &mut scope)?);
    }
    let where_sql = match &s.selection {
        Some(w) => Some(c.condition(w, &scope)?),
        None => None,
    };
    let group_sql = match &s.group_by {
        ast::GroupByExpr::Expressions(exprs, mods) => {
            if !mods.is_empty() {
                return Err(SqlError::unsupported("GROUP BY ... WITH ROLLUP/CUBE"));
            }
            let mut g = Vec::new();
            for e in exprs {
                if matches!(e, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)) {
                    return Err(SqlError::unsupported("ROLLUP / CUBE / GROUPING SETS"));
                }
                g.push(super::func::sort_key(c, &c.value(e, &scope)?)?);
            }
            g
        }
        ast::GroupByExpr::All(_) => return Err(SqlError::unsupported("GROUP BY ALL")),
    };
    let having_sql = match &s.having {
        Some(h) => Some(c.condition(h, &scope)?),
        None => None,
    };
    let mut outputs: Vec<Output> = Vec::new();
    for item in &s.projection {
        match item {
            SelectItem::UnnamedExpr(e) => outputs.push(Output {
                name: output_name(e),
                typed: c.value(e, &scope)?,
            }),
            SelectItem::ExprWithAlias { expr, alias } => outputs.push(Output {
                name: alias.value.clone(),
                typed: c.value(expr, &scope)?,
            }),
            SelectItem::Wildcard(_) => {
                for (sql, col) in scope.star(&[])? {
                    outputs.push(star_output(sql, col));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let q: Vec<String> = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        n.0.iter()
                            .map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default())
                            .collect()
                    }
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => {
                        return Err(SqlError::syntax_near(&e.to_string()))
                    }
                };
                for (sql, col) in scope.star(&q)? {
                    outputs.push(star_output(sql, col));
                }
            }
            SelectItem::ExprWithAliases { .. } => return Err(SqlError::syntax_near("AS")),
        }
    }
    let distinct = match &s.distinct {
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(SqlError::syntax_near("ON")),
        _ => false,
    };
    let mut tail_limit = tail.limit.clone();
    if let Some(top) = &s.top {
        if top.percent || top.with_ties {
            return Err(SqlError::unsupported("TOP ... PERCENT / WITH TIES"));
        }
        tail_limit = Some(match &top.quantity {
            Some(TopQuantity::Constant(n)) => n.to_string(),
            Some(TopQuantity::Expr(e)) => c.value(e, outer)?.sql,
            None => return Err(SqlError::syntax_near("TOP")),
        });
    }
    let sql_names: Vec<String> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if o.name.is_empty() {
                format!("__c{}", i + 1)
            } else {
                o.name.clone()
            }
        })
        .collect();
    // Each string output's collation; one with none is error 451
    // (collation precedence page, "No-Collation Labels").
    let mut out_colls = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        out_colls.push(if o.typed.ty.is_string() {
            Some(
                collation::of(o.typed.coll, c.default_collation()).map_err(|_| {
                    SqlError::new(
                        451,
                        1,
                        16,
                        format!(
                            "Cannot resolve collation conflict for column {} in SELECT statement.",
                            i + 1
                        ),
                    )
                })?,
            )
        } else {
            None
        });
    }
    // Each output's expression and its alias.
    let items: Vec<(String, String)> = outputs
        .iter()
        .zip(&sql_names)
        .zip(&out_colls)
        .map(|((o, n), coll)| {
            let expr = match coll {
                // A base column already carries its declared collation.
                Some(coll) if o.typed.base.is_none() => collation::collate(&o.typed.sql, coll),
                _ => o.typed.sql.clone(),
            };
            (expr, quote_ident(n))
        })
        .collect();
    let mut list: Vec<String> = items.iter().map(|(e, n)| format!("{e} AS {n}")).collect();
    // The recursive member of a recursive CTE: the row's recursion level,
    // one more than that of the row it was made from.
    let level = c
        .recursing
        .borrow_mut()
        .as_mut()
        .and_then(|r| match &r.found {
            Some((alias, depth)) if !r.carried && *depth == r.depth && r.depth == c.depth.get() => {
                r.carried = true;
                Some(format!(
                    "__recursion_level({}.{} + 1, {}) AS {}",
                    quote_ident(alias),
                    quote_ident(LEVEL),
                    c.ctx.max_recursion,
                    quote_ident(LEVEL)
                ))
            }
            _ => None,
        });
    let carries_level = level.is_some();
    list.extend(level);
    let order_by = query.is_some_and(|q| q.order_by.is_some());
    if !carries_level
        && !distinct
        && !order_by
        && s.top.is_none()
        && group_sql.is_empty()
        && having_sql.is_none()
        && !from_sql.is_empty()
        && s.projection.len() > 1
        && s.projection.iter().all(is_min_or_max)
    {
        // SQL Server answers MIN and MAX of an indexed column with one
        // ordered seek each (a Top 1 over the index, forward for MIN and
        // backward for MAX, under a Stream Aggregate; showplan operators:
        // https://learn.microsoft.com/en-us/sql/relational-databases/showplan-logical-and-physical-operators-reference),
        // also when several appear in one SELECT. SQLite seeks only for a
        // query holding a single min() or max()
        // (https://www.sqlite.org/optoverview.html#minmax), so each
        // aggregate becomes a scalar subquery of its own over the same
        // FROM and WHERE: the same single row, the same values, an index's
        // seek where SQL Server would use one. Without an index SQL Server
        // scans once for all of them, so the split is kept only when SQLite
        // plans a seek for every subquery.
        let mut from = format!(" FROM {}", from_sql.join(", "));
        if let Some(w) = &where_sql {
            from.push_str(" WHERE ");
            from.push_str(w);
        }
        let split: Vec<String> = items
            .iter()
            .map(|(e, n)| format!("(SELECT {e}{from}) AS {n}"))
            .collect();
        let mut sql = format!("SELECT {}", split.join(", "));
        sql.push_str(&tail.limit_sql());
        if seeks_only(c.ctx.conn, &c.with_ctes(&sql)) {
            return Ok(compiled(sql, &outputs, &out_colls, sql_names));
        }
    }
    let mut sql = format!(
        "SELECT {}{}",
        if distinct { "DISTINCT " } else { "" },
        if list.is_empty() {
            "NULL".to_string()
        } else {
            list.join(", ")
        }
    );
    if !from_sql.is_empty() {
        sql.push_str(" FROM ");
        sql.push_str(&from_sql.join(", "));
    }
    if let Some(w) = where_sql {
        sql.push_str(" WHERE ");
        sql.push_str(&w);
    }
    if !group_sql.is_empty() {
        sql.push_str(" GROUP BY ");
        sql.push_str(&group_sql.join(", "));
    }
    if let Some(h) = having_sql {
        sql.push_str(" HAVING ");
        sql.push_str(&h);
    }
    if let Some(q) = query {
        if let Some(ob) = &q.order_by {
            let ast::OrderByKind::Expressions(items) = &ob.kind else {
                return Err(SqlError::syntax_near("ALL"));
            };
            let mut keys = Vec::new();
            for o in items {
                keys.push(order_key(c, o, &outputs, &out_colls, &sql_names, &scope)?);
            }
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
    }
    let t = Tail {
        limit: tail_limit,
        offset: tail.offset.clone(),
    };
    sql.push_str(&t.limit_sql());
    Ok(compiled(sql, &outputs, &out_colls, sql_names))
}

/// Whether SQLite plans `sql` without a full scan of any table
/// (https://www.sqlite.org/eqp.html: a `SCAN` line is a full scan, `SEARCH`
/// a seek). A query it cannot plan alone (a correlated fragment) is not.
fn seeks_only(conn: &rusqlite::Connection, sql: &str) -> bool {
    let plan = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(3))?
                .collect::<Result<Vec<_>, _>>()
        });
    match plan {
        Ok(lines) => !lines
            .iter()
            .any(|l| l.starts_with("SCAN") && l != "SCAN CONSTANT ROW"),
        Err(_) => false,
    }
}

/// A select item that is a bare `MIN(...)` or `MAX(...)` aggregate.
fn is_min_or_max(item: &SelectItem) -> bool {
    let e = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    matches!(e, Expr::Function(f) if f.over.is_none()
        && f.filter.is_none()
        && matches!(f.name.to_string().to_ascii_uppercase().as_str(), "MIN" | "MAX"))
}

/// The query's result description around its SQLite text.
fn compiled(
    sql: String,
    outputs: &[Output],
    out_colls: &[Option<crate::types::Collation>],
    sql_names: Vec<String>,
) -> CompiledQuery {
    let columns = outputs
        .iter()
        .zip(out_colls)
        .map(|(o, coll)| {
            let base = o.typed.base.as_ref();
            ColumnMeta {
                name: o.name.clone(),
                sql_type: o.typed.ty,
                nullable: o.typed.nullable,
                identity: base.is_some_and(|b| b.identity),
                updateable: base.is_some_and(|b| !b.identity),
                collation: *coll,
            }
        })
        .collect();
    let bases = outputs.iter().map(|o| o.typed.base.clone()).collect();
    let labels = outputs.iter().map(|o| o.typed.coll).collect();
    CompiledQuery {
        sql,
        columns,
        sql_names,
        bases,
        labels,
    }
}

fn star_output(sql: String, col: SourceCol) -> Output {
    let mut t = Typed::new(sql, col.ty);
    t.nullable = col.nullable;
    if let (true, Some(c)) = (col.ty.is_string(), col.collation) {
        t.coll = Label::Implicit(c);
    }
    if col.base {
        t.base = Some(col.clone());
    }
    Output {
        name: col.name,
        typed: t,
    }
}

/// One ORDER BY key: an output alias or ordinal, or an expression over the
/// FROM clause; strings sort under the default collation.
fn order_key(
    c: &Compiler<'_, '_>,
    o: &ast::OrderByExpr,
    outputs: &[Output],
    out_colls: &[Option<crate::types::Collation>],
    sql_names: &[String],
    scope: &Scope,
) -> Result<String, SqlError> {
    let dir = match o.options.sort {
        Some(ast::OrderBySort::Desc) => " DESC",
        _ => "",
    };
    let alias_of = |name: &str| {
        outputs
            .iter()
            .position(|out| !out.name.is_empty() && out.name.eq_ignore_ascii_case(name))
    };
    let idx = match &o.expr {
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => {
                let i: usize = n.parse().map_err(|_| SqlError::syntax_near(n))?;
                if i == 0 || i > outputs.len() {
                    return Err(SqlError::new(
                        108,
                        1,
                        15,
                        format!("The ORDER BY position number {i} is out of range of the number of items in the select list."),
                    )
                    .batch());
                }
                Some(i - 1)
            }
            _ => None,
        },
        Expr::Identifier(i) if i.quote_style.is_none() || !i.value.starts_with('@') => {
            // An alias wins unless the name is also a column of the FROM clause
            // that the alias does not stand for.
            alias_of(&i.value).filter(|&k| {
                scope.resolve(std::slice::from_ref(&i.value)).is_err()
                    || outputs[k].name.eq_ignore_ascii_case(&i.value)
            })
        }
        _ => None,
    };
    if let Some(i) = idx {
        let key = match &out_colls[i] {
            Some(coll) => collation::collate(&quote_ident(&sql_names[i]), coll),
            None => quote_ident(&sql_names[i]),
        };
        return Ok(format!("{key}{dir}"));
    }
    let t = c.value(&o.expr, scope)?;
    Ok(format!("{}{dir}", super::func::sort_key(c, &t)?))
}

/// One FROM item with its joins; pushes the sources into `scope`.
pub(super) fn from_item(
    c: &Compiler<'_, '_>,
    twj: &TableWithJoins,
    outer: &Scope,
    scope: &mut Scope,
) -> Result<String, SqlError> {
    let mut sql = factor(c, &twj.relation, outer, scope)?;
    for j in &twj.joins {
        let before = scope.current().len();
        let right = factor(c, &j.relation, outer, scope)?;
        let (kw, constraint, null_left, null_right) = match &j.join_operator {
            JoinOperator::Join(k) | JoinOperator::Inner(k) => ("JOIN", Some(k), false, false),
            JoinOperator::Left(k) | JoinOperator::LeftOuter(k) => {
                ("LEFT JOIN", Some(k), false, true)
            }
            JoinOperator::Right(k) | JoinOperator::RightOuter(k) => {
                ("RIGHT JOIN", Some(k), true, false)
            }
            JoinOperator::FullOuter(k) => ("FULL JOIN", Some(k), true, true),
            JoinOperator::CrossJoin(k) => ("CROSS JOIN", Some(k), false, false),
            JoinOperator::CrossApply | JoinOperator::OuterApply => {
                return Err(SqlError::unsupported("CROSS APPLY / OUTER APPLY"))
            }
            other => return Err(SqlError::syntax_near(&format!("{other:?}"))),
        };
        if let Some(levels) = scope.levels.last_mut() {
            let (left, right_srcs) = levels.split_at_mut(before);
            if null_left {
                for s in left.iter_mut() {
                    for col in &mut s.columns {
                        col.nullable = true;
                    }
                }
            }
            if null_right {
                for s in right_srcs.iter_mut() {
                    for col in &mut s.columns {
                        col.nullable = true;
                    }
                }
            }
        }
        let on = match constraint {
            Some(JoinConstraint::On(e)) => format!(" ON {}", c.condition(e, scope)?),
            Some(JoinConstraint::None) | None => String::new(),
            Some(other) => return Err(SqlError::syntax_near(&format!("{other:?}"))),
        };
        sql = format!("{sql} {kw} {right}{on}");
    }
    Ok(sql)
}

/// One table factor: a table, view, CTE, catalog view, derived table or
/// VALUES constructor.
fn factor(
    c: &Compiler<'_, '_>,
    tf: &TableFactor,
    outer: &Scope,
    scope: &mut Scope,
) -> Result<String, SqlError> {
    match tf {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            if let Some(a) = args {
                let fname = crate::engine::parse::ident_values(name);
                if fname.len() == 1 && fname[0].eq_ignore_ascii_case("CHANGETABLE") {
                    return super::changetable::factor(c, a, alias.as_ref(), outer, scope);
                }
                return Err(SqlError::unsupported("table-valued functions"));
            }
            let parts = crate::engine::parse::ident_values(name);
            let alias_name = alias.as_ref().map(|a| a.name.value.clone());
            let sql_alias = c.alias();
            let qualifiers = match &alias_name {
                Some(a) => vec![vec![a.clone()]],
                None => vec![parts.clone()],
            };
            // A CTE of an enclosing WITH.
            if parts.len() == 1 {
                let cte = c
                    .ctes
                    .borrow()
                    .iter()
                    .rev()
                    .find_map(|f| f.get(&parts[0].to_ascii_lowercase()).cloned());
                if let Some(def) = cte {
                    if let Some(r) = c
                        .recursing
                        .borrow_mut()
                        .as_mut()
                        .filter(|r| r.cte.eq_ignore_ascii_case(&parts[0]))
                    {
                        if r.found.is_some() {
                            return Err(SqlError::new(
                                253,
                                1,
                                16,
                                format!("Recursive member of a common table expression '{}' has multiple recursive references.", parts[0]),
                            )
                            .batch());
                        }
                        r.found = Some((sql_alias.clone(), c.depth.get()));
                    }
                    scope.push(Source {
                        qualifiers,
                        sql_alias: sql_alias.clone(),
                        columns: def.columns.clone(),
                    });
                    return Ok(format!("{} AS {}", def.sql_name, quote_ident(&sql_alias)));
                }
            }
            if let Some((sql, columns)) = super::system::view(c, &parts)? {
                scope.push(Source {
                    qualifiers,
                    sql_alias: sql_alias.clone(),
                    columns,
                });
                return Ok(format!("({sql}) AS {}", quote_ident(&sql_alias)));
            }
            if let Some(view) = c.ctx.view(name)? {
                let q = crate::engine::parse::parse_query_text(&view.1)?;
                let r = compile_query(c, &q, &Scope::default())?;
                let columns = derived_columns(&view.0, &r, &[])?;
                let sql = project_as(&r, &columns);
                scope.push(Source {
                    qualifiers,
                    sql_alias: sql_alias.clone(),
                    columns,
                });
                return Ok(format!("({sql}) AS {}", quote_ident(&sql_alias)));
            }
            let meta = c.ctx.table(name)?;
            let columns = meta
                .columns
                .iter()
                .map(|col| SourceCol {
                    name: col.name.clone(),
                    ty: col.ty,
                    nullable: col.nullable,
                    identity: col.identity.is_some(),
                    base: col.computed.is_none(),
                    collation: col.collation,
                })
                .collect();
            let mut qualifiers = qualifiers;
            if alias_name.is_none() && !meta.temp {
                qualifiers.push(vec![
                    meta.db.clone(),
                    meta.schema.clone(),
                    meta.name.clone(),
                ]);
            }
            scope.push(Source {
                qualifiers,
                sql_alias: sql_alias.clone(),
                columns,
            });
            Ok(format!("{} AS {}", meta.physical, quote_ident(&sql_alias)))
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let Some(alias) = alias else {
                return Err(SqlError::syntax_near(")"));
            };
            let sql_alias = c.alias();
            let renames: Vec<String> = alias.columns.iter().map(|c| c.name.value.clone()).collect();
            let r = match subquery.body.as_ref() {
                SetExpr::Values(v) if subquery.with.is_none() => compile_values(c, v, outer)?,
                _ => compile_query(c, subquery, outer)?,
            };
            let columns = derived_columns(&alias.name.value, &r, &renames)?;
            let sql = project_as(&r, &columns);
            scope.push(Source {
                qualifiers: vec![vec![alias.name.value.clone()]],
                sql_alias: sql_alias.clone(),
                columns,
            });
            Ok(format!("({sql}) AS {}", quote_ident(&sql_alias)))
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            if alias.is_some() {
                return Err(SqlError::syntax_near("AS"));
            }
            let inner = from_item(c, table_with_joins, outer, scope)?;
            Ok(format!("({inner})"))
        }
        other => Err(SqlError::syntax_near(
            other.to_string().split_whitespace().next().unwrap_or(""),
        )),
    }
}

/// The columns a derived table or view exposes: the query's, renamed by
/// the alias list; every one must have a distinct name.
fn derived_columns(
    owner: &str,
    r: &CompiledQuery,
    renames: &[String],
) -> Result<Vec<SourceCol>, SqlError> {
    let names: Vec<String> = if renames.is_empty() {
        r.columns.iter().map(|m| m.name.clone()).collect()
    } else {
        if renames.len() != r.columns.len() {
            return Err(SqlError::new(
                8158,
                1,
                16,
                format!("'{owner}' has more columns than were specified in the column list."),
            )
            .batch());
        }
        renames.to_vec()
    };
    check_names(owner, &names)?;
    Ok(r.columns
        .iter()
        .zip(names)
        .zip(&r.bases)
        .map(|((m, n), b)| SourceCol {
            name: n,
            ty: m.sql_type,
            nullable: m.nullable,
            identity: b.as_ref().is_some_and(|b| b.identity),
            base: false,
            collation: m.collation,
        })
        .collect())
}
