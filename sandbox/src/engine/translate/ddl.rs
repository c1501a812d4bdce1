//! Definitions: CREATE TABLE (with the types, NULLability, IDENTITY,
//! DEFAULT, PRIMARY KEY, UNIQUE, CHECK and FOREIGN KEY SQL Server keeps)
//! and DECLARE (scalar variables and table variables).

use sqlparser::ast::{self, ColumnOption, TableConstraint};

use super::{Ctx, Plan, Resolved};
use crate::engine::catalog::{self, physical_name, quote_ident, ColumnDef, Computed, TableMeta};
use crate::engine::collation;
use crate::engine::compile::{Compiler, Scope, Source, SourceCol};
use crate::engine::constraints::{self, CheckConstraint, ForeignKey, RefAction};
use crate::engine::error::SqlError;
use crate::engine::typename::parse_sql_type;
use crate::types::SqlType;

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
    // String columns without COLLATE take their database's collation; a
    // #temp table's database is tempdb, whose collation is the server's
    // (collation and Unicode support page, "tempdb"); a table variable's
    // is the current database's.
    let default_collation = if temp && name.starts_with('@') {
        ctx.collation
    } else {
        catalog::database_collation(ctx.conn, &db)?
    };
    let mut columns = Vec::new();
    let mut pk_name = None;
    let mut unique_keys: Vec<Vec<String>> = Vec::new();
    // Constraints as written, built once every column is known.
    let mut checks: Vec<(Option<String>, ast::Expr, Option<String>)> = Vec::new();
    let mut fks: Vec<(Option<String>, Vec<String>, ast::ForeignKeyConstraint)> = Vec::new();
    for c in &ct.columns {
        let ty = column_type(c, columns.len() + 1)?;
        let mut def = ColumnDef {
            collation: ty.is_string().then_some(default_collation),
            ..ColumnDef::new(&c.name.value, ty)
        };
        if is_rowversion(c) {
            if columns.iter().any(|o: &ColumnDef| o.rowversion) {
                return Err(one_rowversion(&name, &def.name));
            }
            // NOT NULL unless declared NULL (then it is a varbinary(8) in
            // all but its numbering).
            def.rowversion = true;
            def.nullable = false;
        }
        for o in &c.options {
            let cname = o.name.as_ref().map(|n| n.value.clone());
            match &o.option {
                ColumnOption::Null => def.nullable = true,
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::Default(e) => {
                    def.default = Some(e.to_string());
                    def.default_name = cname;
                }
                ColumnOption::PrimaryKey(_) => {
                    def.in_pk = true;
                    def.nullable = false;
                    if let Some(n) = cname {
                        pk_name = Some(n);
                    }
                }
                ColumnOption::Unique(_) => unique_keys.push(vec![def.name.clone()]),
                ColumnOption::Identity(kind) => {
                    let (seed, inc) = identity_params(kind);
                    def.identity = Some((seed, inc));
                    def.nullable = false;
                }
                ColumnOption::Check(cc) => checks.push((
                    cname.or_else(|| cc.name.as_ref().map(|n| n.value.clone())),
                    (*cc.expr).clone(),
                    Some(def.name.clone()),
                )),
                ColumnOption::ForeignKey(fk) => fks.push((
                    cname.or_else(|| fk.name.as_ref().map(|n| n.value.clone())),
                    vec![def.name.clone()],
                    fk.clone(),
                )),
                ColumnOption::Collation(coll) => {
                    let n = super::ident_values(coll).join(".");
                    let parsed = if n.eq_ignore_ascii_case("DATABASE_DEFAULT") {
                        ctx.collation
                    } else {
                        collation::parse(&n).ok_or_else(|| collation::invalid(&n))?
                    };
                    if def.ty.is_string() {
                        def.collation = Some(parsed);
                    }
                }
                ColumnOption::Comment(_) => {}
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
            TableConstraint::Unique(u) => unique_keys.push(
                u.columns
                    .iter()
                    .map(|ic| {
                        ic.column
                            .expr
                            .to_string()
                            .trim_matches(|c| c == '[' || c == ']' || c == '"')
                            .to_string()
                    })
                    .collect(),
            ),
            TableConstraint::Check(cc) => checks.push((
                cc.name.as_ref().map(|n| n.value.clone()),
                (*cc.expr).clone(),
                None,
            )),
            TableConstraint::ForeignKey(fk) => fks.push((
                fk.name.as_ref().map(|n| n.value.clone()),
                fk.columns.iter().map(|c| c.value.clone()).collect(),
                fk.clone(),
            )),
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
    let mut meta = TableMeta {
        db,
        schema,
        name,
        physical,
        columns,
        pk_name,
        temp,
        object_id: None,
        unique_keys,
        checks: vec![],
        foreign_keys: vec![],
    };
    let mut infos = Vec::new();
    for (cname, expr, column) in checks {
        let c = check_constraint(ctx, &meta, cname, &expr, column.as_deref())?;
        meta.checks.push(c);
    }
    for (cname, cols, fk) in fks {
        if meta.temp {
            // CREATE TABLE page: FOREIGN KEYs on temporary tables are skipped with a warning.
            infos.push(SqlError::new(
                1756,
                0,
                10,
                format!(
                    "Skipping FOREIGN KEY constraint '{}' definition for temporary table. FOREIGN KEY constraints are not enforced on local or global temporary tables.",
                    cname.unwrap_or_else(|| meta.name.clone())
                ),
            ));
            continue;
        }
        let k = foreign_key(ctx, &meta, cname, cols, &fk)?;
        meta.foreign_keys.push(k);
    }
    if meta.temp {
        // Temporary tables' constraints never reach the catalog: name them here.
        for (i, c) in meta.checks.iter_mut().enumerate() {
            if c.system_named {
                c.name = constraints::system_name(
                    "CK",
                    &meta.name,
                    c.column.as_deref(),
                    fxhash(&meta.name) as i64 + i as i64,
                );
            }
        }
    }
    Ok(Plan::CreateTable(Box::new(meta), infos))
}

/// A CHECK constraint of `meta`, its condition compiled once to find
/// unknown columns now (207) rather than at the first write.
/// learn.microsoft.com/sql/relational-databases/tables/create-check-constraints
pub(crate) fn check_constraint(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    name: Option<String>,
    expr: &ast::Expr,
    column: Option<&str>,
) -> Result<CheckConstraint, SqlError> {
    if let Some(col) = column {
        // A column-level CHECK may only mention its own column (8141).
        if constraints::mentioned_columns(expr)
            .iter()
            .any(|m| !m.eq_ignore_ascii_case(col))
        {
            return Err(SqlError::new(
                8141,
                0,
                16,
                format!(
                    "Column CHECK constraint for column '{col}' references another column, table '{}'.",
                    meta.name
                ),
            ));
        }
    }
    let scope = table_scope(meta);
    Compiler::new(ctx).condition(expr, &scope)?;
    Ok(CheckConstraint {
        object_id: 0,
        system_named: name.is_none(),
        name: name.unwrap_or_default(),
        definition: format!("({expr})"),
        column: column.map(str::to_string),
        disabled: false,
        not_trusted: false,
    })
}

/// A table's own columns in scope, unqualified (CHECK conditions).
pub(crate) fn table_scope(meta: &TableMeta) -> Scope {
    let mut scope = Scope::default();
    scope.push(crate::engine::compile::table_source(
        meta,
        vec![vec![meta.name.clone()]],
        "",
    ));
    scope
}

/// A FOREIGN KEY of `meta` (the referencing table), checked against the
/// referenced table as CREATE TABLE and ALTER TABLE check it: the table
/// exists in the same database (1767, 1763), the columns exist (1769,
/// 1770), match a primary or unique key in count and order (1774, 1776),
/// and have the same types (1778).
/// learn.microsoft.com/sql/relational-databases/tables/primary-and-foreign-key-constraints
pub(crate) fn foreign_key(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    name: Option<String>,
    columns: Vec<String>,
    fk: &ast::ForeignKeyConstraint,
) -> Result<ForeignKey, SqlError> {
    let shown = name.clone().unwrap_or_else(|| {
        constraints::system_name("FK", &meta.name, columns.first().map(String::as_str), 0)
    });
    let (rdb, rschema, rname) = match ctx.resolve(&fk.foreign_table)? {
        Resolved::Table { db, schema, name } => (db, schema, name),
        Resolved::Temp(t) => {
            return Err(SqlError::new(
                1767,
                0,
                16,
                format!("Foreign key '{shown}' references invalid table '{t}'."),
            ))
        }
    };
    if !rdb.eq_ignore_ascii_case(&meta.db) {
        return Err(SqlError::new(
            1763,
            0,
            16,
            format!(
                "Cross-database foreign key references are not supported. Foreign key '{shown}'."
            ),
        ));
    }
    let same = rschema.eq_ignore_ascii_case(&meta.schema) && rname.eq_ignore_ascii_case(&meta.name);
    let referenced = if same {
        meta.clone()
    } else {
        catalog::find_table(ctx.conn, &rdb, &rschema, &rname)?.ok_or_else(|| {
            SqlError::new(
                1767,
                0,
                16,
                format!(
                    "Foreign key '{shown}' references invalid table '{}'.",
                    super::ident_values(&fk.foreign_table).join(".")
                ),
            )
        })?
    };
    let mut own = Vec::new();
    for c in &columns {
        let (_, def) = meta.column(c).ok_or_else(|| {
            SqlError::new(
                1769,
                0,
                16,
                format!(
                    "Foreign key '{shown}' references invalid column '{c}' in referencing table '{}'.",
                    meta.name
                ),
            )
        })?;
        own.push(def.clone());
    }
    let pk: Vec<String> = referenced
        .columns
        .iter()
        .filter(|c| c.in_pk)
        .map(|c| c.name.clone())
        .collect();
    let ref_columns: Vec<String> = if fk.referred_columns.is_empty() {
        pk.clone()
    } else {
        fk.referred_columns
            .iter()
            .map(|c| c.value.clone())
            .collect()
    };
    let mut theirs = Vec::new();
    for c in &ref_columns {
        let (_, def) = referenced.column(c).ok_or_else(|| {
            SqlError::new(
                1770,
                0,
                16,
                format!(
                    "Foreign key '{shown}' references invalid column '{c}' in referenced table '{}'.",
                    referenced.name
                ),
            )
        })?;
        theirs.push(def.clone());
    }
    if theirs.len() != own.len() {
        return Err(SqlError::new(
            1774,
            0,
            16,
            format!(
                "The number of columns in the referencing column list for foreign key '{shown}' does not match those of the primary key in the referenced table '{}'.",
                referenced.name
            ),
        ));
    }
    let names: Vec<String> = theirs.iter().map(|c| c.name.to_ascii_lowercase()).collect();
    let is_key = |key: &[String]| {
        key.len() == names.len()
            && key
                .iter()
                .zip(&names)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    if theirs.is_empty() || !(is_key(&pk) || referenced.unique_keys.iter().any(|k| is_key(k))) {
        return Err(SqlError::new(
            1776,
            0,
            16,
            format!(
                "There are no primary or candidate keys in the referenced table '{}' that match the referencing column list in the foreign key '{shown}'.",
                referenced.name
            ),
        ));
    }
    for (a, b) in own.iter().zip(&theirs) {
        if a.ty.base_name() != b.ty.base_name()
            || (matches!(a.ty, SqlType::Decimal { .. }) && a.ty != b.ty)
        {
            return Err(SqlError::new(
                1778,
                0,
                16,
                format!(
                    "Column '{}.{}' is not the same data type as referencing column '{}.{}' in foreign key '{shown}'.",
                    referenced.name, b.name, meta.name, a.name
                ),
            ));
        }
    }
    Ok(ForeignKey {
        object_id: 0,
        system_named: name.is_none(),
        name: name.unwrap_or_default(),
        columns: own.iter().map(|c| c.name.clone()).collect(),
        ref_db: referenced.db.clone(),
        ref_schema: referenced.schema.clone(),
        ref_table: referenced.name.clone(),
        ref_columns: theirs.iter().map(|c| c.name.clone()).collect(),
        on_delete: RefAction::from_ast(fk.on_delete.as_ref()),
        on_update: RefAction::from_ast(fk.on_update.as_ref()),
        disabled: false,
        not_trusted: false,
    })
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
            let Plan::CreateTable(mut meta, _) = plan_create_table(ctx, ct)? else {
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
                collation: c.collation,
            })
            .collect(),
    });
    let compiler = Compiler::new(ctx);
    for c in columns.iter_mut() {
        if let Some(comp) = &mut c.computed {
            let e = super::parse_expr(&comp.tsql)?;
            let t = compiler.value(&e, &scope)?;
            c.collation = if t.ty.is_string() {
                Some(compiler.collation_of(&t, "CREATE TABLE")?)
            } else {
                None
            };
            comp.sql = t.sql;
            c.ty = t.ty;
            c.nullable = true;
        }
    }
    Ok(())
}

/// A column definition's type; error 2715 names it and its position.
/// Whether a column is declared `rowversion` (or its synonym `timestamp`).
fn is_rowversion(c: &ast::ColumnDef) -> bool {
    let t = c.data_type.to_string();
    t.eq_ignore_ascii_case("rowversion") || t.eq_ignore_ascii_case("timestamp")
}

/// Error 2738: a second rowversion column in one table.
fn one_rowversion(table: &str, column: &str) -> SqlError {
    SqlError::new(
        2738,
        2,
        16,
        format!(
            "A table can only have one timestamp column. Because table '{table}' already has one, the column '{column}' cannot be added."
        ),
    )
}

fn column_type(c: &ast::ColumnDef, position: usize) -> Result<SqlType, SqlError> {
    let ty_text = c.data_type.to_string();
    parse_sql_type(&ty_text).ok_or_else(|| {
        SqlError::new(
            2715,
            6,
            16,
            format!("Column, parameter, or variable #{position}: Cannot find data type {ty_text}."),
        )
        .batch()
    })
}

/// A column added by ALTER TABLE ... ADD: its type, NULL or NOT NULL, a
/// DEFAULT and a COLLATE
/// (https://learn.microsoft.com/en-us/sql/t-sql/statements/alter-table-transact-sql).
/// Other column options (IDENTITY, keys, CHECK, computed columns) are
/// refused as not supported by the sandbox.
pub(crate) fn added_column(
    ctx: &Ctx<'_>,
    c: &ast::ColumnDef,
    db: &str,
) -> Result<ColumnDef, SqlError> {
    let ty = column_type(c, 1)?;
    if is_rowversion(c) {
        // Existing rows would need numbering as they are added.
        return Err(SqlError::unsupported(
            "ALTER TABLE ... ADD of a rowversion column",
        ));
    }
    let mut def = ColumnDef::new(&c.name.value, ty);
    if ty.is_string() {
        def.collation = Some(catalog::database_collation(ctx.conn, db)?);
    }
    for o in &c.options {
        match &o.option {
            ColumnOption::Null => def.nullable = true,
            ColumnOption::NotNull => def.nullable = false,
            ColumnOption::Default(e) => {
                def.default = Some(e.to_string());
                def.default_name = o.name.as_ref().map(|n| n.value.clone());
            }
            ColumnOption::Collation(coll) => {
                let n = super::ident_values(coll).join(".");
                let parsed = if n.eq_ignore_ascii_case("DATABASE_DEFAULT") {
                    ctx.collation
                } else {
                    collation::parse(&n).ok_or_else(|| collation::invalid(&n))?
                };
                if def.ty.is_string() {
                    def.collation = Some(parsed);
                }
            }
            other => {
                return Err(SqlError::unsupported(&format!(
                    "ALTER TABLE ADD column with {other}"
                )))
            }
        }
    }
    Ok(def)
}
