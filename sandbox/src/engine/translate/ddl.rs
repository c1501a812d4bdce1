//! Definitions: CREATE TABLE (with the types, NULLability, IDENTITY,
//! DEFAULT and PRIMARY KEY SQL Server keeps) and DECLARE (scalar variables
//! and table variables).

use sqlparser::ast::{self, ColumnOption, TableConstraint};

use super::{Ctx, Plan, Resolved};
use crate::engine::catalog::{self, physical_name, quote_ident, ColumnDef, Computed, TableMeta};
use crate::engine::compile::{Compiler, Scope, Source, SourceCol};
use crate::engine::error::SqlError;
use crate::engine::typename::parse_sql_type;

pub(super) fn plan_create_table(ctx: &Ctx<'_>, ct: ast::CreateTable) -> Result<Plan, SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::unsupported("CREATE TABLE AS"));
    }
    let (db, schema, name, temp) = match ctx.resolve(&ct.name)? {
        Resolved::Temp(t) => (String::from("tempdb"), String::from("dbo"), t, true),
        Resolved::Table { db, schema, name } => {
            if !catalog::schema_exists(ctx.conn, &db, &schema)? {
                return Err(SqlError::new(
                    2760,
                    1,
                    16,
                    format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."),
                ));
            }
            (db, schema, name, false)
        }
    };
    let mut columns = Vec::new();
    let mut pk_name = None;
    for c in &ct.columns {
        let ty_text = c.data_type.to_string();
        let ty = parse_sql_type(&ty_text).ok_or_else(|| {
            SqlError::new(
                2715,
                6,
                16,
                format!(
                    "Column, parameter, or variable #{}: Cannot find data type {ty_text}.",
                    columns.len() + 1
                ),
            )
            .batch()
        })?;
        let mut def = ColumnDef {
            name: c.name.value.clone(),
            ty,
            nullable: true,
            identity: None,
            default: None,
            in_pk: false,
            computed: None,
        };
        for o in &c.options {
            match &o.option {
                ColumnOption::Null => def.nullable = true,
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::Default(e) => {
                    def.default = Some(e.to_string());
                }
                ColumnOption::PrimaryKey(_) => {
                    def.in_pk = true;
                    def.nullable = false;
                    if let Some(n) = &o.name {
                        pk_name = Some(n.value.clone());
                    }
                }
                ColumnOption::Unique(_) => {}
                ColumnOption::Identity(kind) => {
                    let (seed, inc) = identity_params(kind);
                    def.identity = Some((seed, inc));
                    def.nullable = false;
                }
                ColumnOption::Collation(_) | ColumnOption::Check(_) | ColumnOption::Comment(_) => {}
                // `c AS (expr)`, read by the batch parser as a generated column.
                ColumnOption::Generated {
                    generation_expr: Some(e),
                    ..
                } => {
                    def.computed = Some(Computed {
                        tsql: e.to_string(),
                        sql: String::new(),
                    });
                }
                ColumnOption::DialectSpecific(tokens) => {
                    let text: String = tokens
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if text.to_ascii_uppercase().contains("IDENTITY") {
                        def.identity = Some((1, 1));
                        def.nullable = false;
                    }
                }
                other => {
                    return Err(SqlError::unsupported(&format!("column option {other}")));
                }
            }
        }
        columns.push(def);
    }
    computed_types(ctx, &mut columns)?;
    for tc in &ct.constraints {
        match tc {
            TableConstraint::PrimaryKey(pk) => {
                if let Some(n) = &pk.name {
                    pk_name = Some(n.value.clone());
                }
                for ic in &pk.columns {
                    let cname = ic.column.expr.to_string();
                    let cname = cname.trim_matches(|c| c == '[' || c == ']' || c == '"');
                    let col = columns
                        .iter_mut()
                        .find(|c| c.name.eq_ignore_ascii_case(cname))
                        .ok_or_else(|| {
                            SqlError::new(
                                1911,
                                1,
                                16,
                                format!("Column name '{cname}' does not exist in the target table or view."),
                            )
                        })?;
                    col.in_pk = true;
                    col.nullable = false;
                }
            }
            TableConstraint::Unique(_)
            | TableConstraint::Check(_)
            | TableConstraint::ForeignKey(_) => {}
            other => return Err(SqlError::unsupported(&format!("constraint {other}"))),
        }
    }
    if columns.iter().any(|c| c.in_pk) && pk_name.is_none() {
        pk_name = Some(format!(
            "PK__{}__{:016X}",
            name.chars().take(8).collect::<String>(),
            fxhash(&name)
        ));
    }
    let physical = if temp {
        format!("temp.{}", quote_ident(&name))
    } else {
        physical_name(&db, &schema, &name)
    };
    Ok(Plan::CreateTable(Box::new(TableMeta {
        db,
        schema,
        name,
        physical,
        columns,
        pk_name,
        temp,
    })))
}

fn identity_params(kind: &ast::IdentityPropertyKind) -> (i64, i64) {
    let prop = match kind {
        ast::IdentityPropertyKind::Autoincrement(p) | ast::IdentityPropertyKind::Identity(p) => p,
    };
    match &prop.parameters {
        Some(ast::IdentityPropertyFormatKind::FunctionCall(p))
        | Some(ast::IdentityPropertyFormatKind::StartAndIncrement(p)) => (
            p.seed.to_string().parse().unwrap_or(1),
            p.increment.to_string().parse().unwrap_or(1),
        ),
        None => (1, 1),
    }
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// DECLARE: scalar variables (with their initial value converted to the
/// declared type) and table variables.
pub(super) fn plan_declare(ctx: &Ctx<'_>, stmts: Vec<ast::Declare>) -> Result<Plan, SqlError> {
    let mut out = Vec::new();
    for d in stmts {
        if let Some(ast::DataType::Table(Some(cols))) = &d.data_type {
            let name = d
                .names
                .first()
                .map(|n| n.value.clone())
                .ok_or_else(|| SqlError::syntax_near("DECLARE"))?;
            let ct = ast::helpers::stmt_create_table::CreateTableBuilder::new(
                ast::ObjectName::from(vec![ast::Ident::new(name.clone())]),
            )
            .columns(cols.clone())
            .build();
            let Plan::CreateTable(mut meta) = plan_create_table(ctx, ct)? else {
                return Err(SqlError::syntax_near("TABLE"));
            };
            meta.name = name.to_ascii_lowercase();
            meta.physical = format!("temp.{}", quote_ident(&meta.name));
            return Ok(Plan::DeclareTable(meta));
        }
        let ty = d
            .data_type
            .as_ref()
            .ok_or_else(|| SqlError::syntax_near("DECLARE"))
            .and_then(|t| {
                parse_sql_type(&t.to_string()).ok_or_else(|| {
                    SqlError::new(
                        2715,
                        3,
                        16,
                        format!("Column, parameter, or variable #1: Cannot find data type {t}."),
                    )
                    .batch()
                })
            })?;
        let init = match &d.assignment {
            Some(ast::DeclareAssignment::Expr(e))
            | Some(ast::DeclareAssignment::Default(e))
            | Some(ast::DeclareAssignment::MsSqlAssignment(e)) => {
                Some(super::scalar_as(ctx, e, &ty)?)
            }
            Some(other) => return Err(SqlError::syntax_near(&other.to_string())),
            None => None,
        };
        for name in d.names {
            out.push((name.value.clone(), ty, init.clone()));
        }
    }
    Ok(Plan::Declare(out))
}

/// A computed column's type is its expression's, over the table's other
/// columns; its SQLite text refers to them unqualified.
fn computed_types(ctx: &Ctx<'_>, columns: &mut [ColumnDef]) -> Result<(), SqlError> {
    if columns.iter().all(|c| c.computed.is_none()) {
        return Ok(());
    }
    let mut scope = Scope::default();
    scope.push(Source {
        qualifiers: vec![],
        sql_alias: String::new(),
        columns: columns
            .iter()
            .filter(|c| c.computed.is_none())
            .map(|c| SourceCol {
                name: c.name.clone(),
                ty: c.ty,
                nullable: c.nullable,
                identity: c.identity.is_some(),
                base: false,
            })
            .collect(),
    });
    let compiler = Compiler::new(ctx);
    for c in columns.iter_mut() {
        if let Some(comp) = &mut c.computed {
            let e = super::parse_expr(&comp.tsql)?;
            let t = compiler.value(&e, &scope)?;
            comp.sql = t.sql;
            c.ty = t.ty;
            c.nullable = true;
        }
    }
    Ok(())
}
