//! The DDL sqlparser does not read in T-SQL's form, parsed from the token
//! stream: ALTER TABLE (constraints, CHECK/NOCHECK, change tracking,
//! triggers), CREATE/ALTER/DROP/ENABLE/DISABLE TRIGGER and ALTER DATABASE.
//! learn.microsoft.com/sql/t-sql/statements/alter-table-transact-sql
//! learn.microsoft.com/sql/t-sql/statements/create-trigger-transact-sql

use sqlparser::ast::{ColumnDef, Expr, ObjectName, TableConstraint};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

use crate::engine::error::SqlError;
use crate::engine::triggers::Events;

/// One `ADD` item of ALTER TABLE.
#[derive(Clone, Debug)]
pub enum AddItem {
    Constraint(TableConstraint),
    /// `[CONSTRAINT name] DEFAULT expr FOR column`.
    Default {
        name: Option<String>,
        expr: Expr,
        column: String,
    },
    Column(ColumnDef),
}

/// What an ALTER TABLE does.
#[derive(Clone, Debug)]
pub enum AlterAction {
    /// `[WITH CHECK | WITH NOCHECK] ADD ...`: `with_check` is the WITH
    /// clause (new constraints default to WITH CHECK).
    Add {
        with_check: Option<bool>,
        items: Vec<AddItem>,
    },
    /// `[WITH CHECK | WITH NOCHECK] {CHECK | NOCHECK} CONSTRAINT {ALL | names}`.
    SetConstraints {
        with_check: Option<bool>,
        enable: bool,
        names: Option<Vec<String>>,
    },
    DropConstraints {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `{ENABLE | DISABLE} CHANGE_TRACKING [WITH (TRACK_COLUMNS_UPDATED = ON)]`.
    ChangeTracking {
        enable: bool,
        track_columns: bool,
    },
    /// `{ENABLE | DISABLE} TRIGGER {ALL | names}`.
    Triggers {
        enable: bool,
        names: Option<Vec<String>>,
    },
}

#[derive(Clone, Debug)]
pub struct AlterTable {
    pub table: ObjectName,
    pub action: AlterAction,
}

/// CREATE [OR ALTER] TRIGGER / ALTER TRIGGER.
#[derive(Clone, Debug)]
pub struct TriggerDef {
    pub name: ObjectName,
    pub table: ObjectName,
    pub events: Events,
    pub instead_of: bool,
    /// CREATE OR ALTER or ALTER TRIGGER.
    pub replace: bool,
    /// ALTER TRIGGER: the trigger must exist.
    pub must_exist: bool,
    pub body: String,
}

/// What ALTER DATABASE sets.
#[derive(Clone, Debug, PartialEq)]
pub enum DatabaseOption {
    /// `COLLATE name`.
    Collate(String),
    /// `SET CHANGE_TRACKING = ON [(options)]`, `SET CHANGE_TRACKING (options)`
    /// or `SET CHANGE_TRACKING = OFF`.
    ChangeTracking {
        on: Option<bool>,
        /// (value, units: MINUTES / HOURS / DAYS)
        retention: Option<(i64, String)>,
        auto_cleanup: Option<bool>,
    },
    /// `SET ALLOW_SNAPSHOT_ISOLATION {ON | OFF}`.
    AllowSnapshot(bool),
    /// Other `SET` options, accepted and ignored (READ_COMMITTED_SNAPSHOT, ...).
    Other(String),
}

#[derive(Clone, Debug)]
pub struct AlterDatabase {
    /// None for `CURRENT`.
    pub name: Option<String>,
    pub option: DatabaseOption,
}

pub(super) type PResult<T> = Result<T, SqlError>;

fn perr(e: ParserError) -> SqlError {
    crate::engine::parse::syntax(e)
}

fn word(p: &mut Parser<'_>, w: &str) -> bool {
    match p.peek_token().token {
        Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w) => {
            p.next_token();
            true
        }
        _ => false,
    }
}

fn expect_word(p: &mut Parser<'_>, w: &str) -> PResult<()> {
    if word(p, w) {
        Ok(())
    } else {
        Err(SqlError::syntax_near(&p.peek_token().token.to_string()))
    }
}

fn peek_word(p: &Parser<'_>, n: usize, w: &str) -> bool {
    matches!(p.peek_nth_token(n).token,
        Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

fn names_or_all(p: &mut Parser<'_>) -> PResult<Option<Vec<String>>> {
    if p.parse_keyword(Keyword::ALL) {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        out.push(p.parse_identifier().map_err(perr)?.value);
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    Ok(Some(out))
}

/// `ALTER TABLE` after those two words.
pub(super) fn alter_table(p: &mut Parser<'_>) -> PResult<AlterTable> {
    let table = p.parse_object_name(false).map_err(perr)?;
    let mut with_check = None;
    if peek_word(p, 0, "WITH") && (peek_word(p, 1, "CHECK") || peek_word(p, 1, "NOCHECK")) {
        p.next_token();
        with_check = Some(word(p, "CHECK") || !word(p, "NOCHECK"));
    }
    let action = if word(p, "ADD") {
        let mut items = Vec::new();
        loop {
            items.push(add_item(p)?);
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        AlterAction::Add { with_check, items }
    } else if peek_word(p, 0, "CHECK") || peek_word(p, 0, "NOCHECK") {
        let enable = word(p, "CHECK") || !word(p, "NOCHECK");
        expect_word(p, "CONSTRAINT")?;
        AlterAction::SetConstraints {
            with_check,
            enable,
            names: names_or_all(p)?,
        }
    } else if with_check.is_some() {
        return Err(SqlError::syntax_near(&p.peek_token().token.to_string()));
    } else if word(p, "DROP") {
        if word(p, "COLUMN") {
            return Err(SqlError::unsupported("ALTER TABLE DROP COLUMN"));
        }
        let _ = word(p, "CONSTRAINT");
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let mut names = Vec::new();
        loop {
            let _ = word(p, "CONSTRAINT");
            names.push(p.parse_identifier().map_err(perr)?.value);
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        AlterAction::DropConstraints { names, if_exists }
    } else if peek_word(p, 0, "ENABLE") || peek_word(p, 0, "DISABLE") {
        let enable = word(p, "ENABLE") || !word(p, "DISABLE");
        if word(p, "CHANGE_TRACKING") {
            let mut track_columns = false;
            if p.parse_keyword(Keyword::WITH) {
                p.expect_token(&Token::LParen).map_err(perr)?;
                expect_word(p, "TRACK_COLUMNS_UPDATED")?;
                p.expect_token(&Token::Eq).map_err(perr)?;
                track_columns = on_off(p)?;
                p.expect_token(&Token::RParen).map_err(perr)?;
            }
            AlterAction::ChangeTracking {
                enable,
                track_columns,
            }
        } else if word(p, "TRIGGER") {
            AlterAction::Triggers {
                enable,
                names: names_or_all(p)?,
            }
        } else {
            return Err(SqlError::syntax_near(&p.peek_token().token.to_string()));
        }
    } else {
        let head = p.peek_token().token.to_string().to_ascii_uppercase();
        return Err(SqlError::unsupported(&format!("ALTER TABLE {head}")));
    };
    Ok(AlterTable { table, action })
}

fn on_off(p: &mut Parser<'_>) -> PResult<bool> {
    if p.parse_keyword(Keyword::ON) || word(p, "ON") {
        Ok(true)
    } else if word(p, "OFF") {
        Ok(false)
    } else {
        Err(SqlError::syntax_near(&p.peek_token().token.to_string()))
    }
}

fn add_item(p: &mut Parser<'_>) -> PResult<AddItem> {
    // `[CONSTRAINT name] DEFAULT expr FOR column`, which sqlparser has no form for.
    let named_default = peek_word(p, 0, "CONSTRAINT") && peek_word(p, 2, "DEFAULT");
    if named_default || peek_word(p, 0, "DEFAULT") {
        let name = if named_default {
            p.next_token();
            Some(p.parse_identifier().map_err(perr)?.value)
        } else {
            None
        };
        expect_word(p, "DEFAULT")?;
        let expr = p.parse_expr().map_err(perr)?;
        p.expect_keyword(Keyword::FOR).map_err(perr)?;
        let column = p.parse_identifier().map_err(perr)?.value;
        return Ok(AddItem::Default { name, expr, column });
    }
    let constraint_start = ["CONSTRAINT", "CHECK", "FOREIGN", "PRIMARY", "UNIQUE"]
        .iter()
        .any(|w| peek_word(p, 0, w));
    if constraint_start {
        return match p.parse_optional_table_constraint().map_err(perr)? {
            Some(c) => Ok(AddItem::Constraint(c)),
            None => Err(SqlError::syntax_near(&p.peek_token().token.to_string())),
        };
    }
    Ok(AddItem::Column(p.parse_column_def().map_err(perr)?))
}

/// `CREATE [OR ALTER] TRIGGER` / `ALTER TRIGGER` after those words:
/// `name ON table [WITH ...] {FOR | AFTER | INSTEAD OF} {INSERT, UPDATE,
/// DELETE} [WITH APPEND] [NOT FOR REPLICATION] AS`; returns the definition
/// without its body.
pub(super) fn trigger_head(
    p: &mut Parser<'_>,
    replace: bool,
    must_exist: bool,
) -> PResult<TriggerDef> {
    let name = p.parse_object_name(false).map_err(perr)?;
    p.expect_keyword(Keyword::ON).map_err(perr)?;
    if peek_word(p, 0, "DATABASE") || peek_word(p, 0, "ALL") {
        return Err(SqlError::unsupported("DDL triggers"));
    }
    let table = p.parse_object_name(false).map_err(perr)?;
    if p.parse_keyword(Keyword::WITH) {
        // ENCRYPTION, EXECUTE AS ...: nothing the sandbox does differently.
        let starts_timing = |p: &Parser<'_>| {
            ["FOR", "AFTER", "INSTEAD"]
                .iter()
                .any(|w| peek_word(p, 0, w))
        };
        while !matches!(p.peek_token().token, Token::EOF) && !starts_timing(p) {
            p.next_token();
        }
    }
    let instead_of = if word(p, "INSTEAD") {
        expect_word(p, "OF")?;
        true
    } else if word(p, "AFTER") || p.parse_keyword(Keyword::FOR) {
        false
    } else {
        return Err(SqlError::syntax_near(&p.peek_token().token.to_string()));
    };
    let mut events = Events::default();
    loop {
        if p.parse_keyword(Keyword::INSERT) {
            events.insert = true;
        } else if p.parse_keyword(Keyword::UPDATE) {
            events.update = true;
        } else if p.parse_keyword(Keyword::DELETE) {
            events.delete = true;
        } else {
            return Err(SqlError::syntax_near(&p.peek_token().token.to_string()));
        }
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    if peek_word(p, 0, "WITH") && peek_word(p, 1, "APPEND") {
        p.next_token();
        p.next_token();
    }
    if peek_word(p, 0, "NOT") && peek_word(p, 1, "FOR") {
        p.next_token();
        p.next_token();
        expect_word(p, "REPLICATION")?;
    }
    p.expect_keyword(Keyword::AS).map_err(perr)?;
    Ok(TriggerDef {
        name,
        table,
        events,
        instead_of,
        replace,
        must_exist,
        body: String::new(),
    })
}

/// `DROP TRIGGER [IF EXISTS] name [, ...]` after those words.
pub(super) fn drop_trigger(p: &mut Parser<'_>) -> PResult<(Vec<ObjectName>, bool)> {
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let mut names = Vec::new();
    loop {
        names.push(p.parse_object_name(false).map_err(perr)?);
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    if p.parse_keyword(Keyword::ON) {
        return Err(SqlError::unsupported("DDL triggers"));
    }
    Ok((names, if_exists))
}

/// `{ENABLE | DISABLE} TRIGGER {ALL | names} ON table` after the first word.
pub(super) fn enable_trigger(p: &mut Parser<'_>) -> PResult<(Option<Vec<String>>, ObjectName)> {
    expect_word(p, "TRIGGER")?;
    let names = if p.parse_keyword(Keyword::ALL) {
        None
    } else {
        let mut out = Vec::new();
        loop {
            let n = p.parse_object_name(false).map_err(perr)?;
            out.push(super::ident_values(&n).pop().unwrap_or_default());
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        Some(out)
    };
    p.expect_keyword(Keyword::ON).map_err(perr)?;
    if peek_word(p, 0, "DATABASE") || peek_word(p, 0, "ALL") {
        return Err(SqlError::unsupported("DDL triggers"));
    }
    let table = p.parse_object_name(false).map_err(perr)?;
    Ok((names, table))
}

/// `ALTER DATABASE {name | CURRENT} {COLLATE name | SET option}` after those words.
/// learn.microsoft.com/sql/t-sql/statements/alter-database-transact-sql-set-options
pub(super) fn alter_database(p: &mut Parser<'_>) -> PResult<AlterDatabase> {
    let name = if word(p, "CURRENT") {
        None
    } else {
        Some(p.parse_identifier().map_err(perr)?.value)
    };
    if word(p, "COLLATE") {
        let c = p.parse_identifier().map_err(perr)?.value;
        return Ok(AlterDatabase {
            name,
            option: DatabaseOption::Collate(c),
        });
    }
    p.expect_keyword(Keyword::SET).map_err(perr)?;
    if word(p, "ALLOW_SNAPSHOT_ISOLATION") {
        let on = on_off(p)?;
        return Ok(AlterDatabase {
            name,
            option: DatabaseOption::AllowSnapshot(on),
        });
    }
    if !word(p, "CHANGE_TRACKING") {
        let mut text = Vec::new();
        while !matches!(p.peek_token().token, Token::EOF | Token::SemiColon) {
            text.push(p.next_token().token.to_string());
        }
        return Ok(AlterDatabase {
            name,
            option: DatabaseOption::Other(text.join(" ")),
        });
    }
    let mut on = None;
    if p.consume_token(&Token::Eq) {
        on = Some(on_off(p)?);
    }
    let mut retention = None;
    let mut auto_cleanup = None;
    if p.consume_token(&Token::LParen) {
        loop {
            if word(p, "CHANGE_RETENTION") {
                p.expect_token(&Token::Eq).map_err(perr)?;
                let n = match p.next_token().token {
                    Token::Number(n, _) => {
                        n.parse::<i64>().map_err(|_| SqlError::syntax_near(&n))?
                    }
                    other => return Err(SqlError::syntax_near(&other.to_string())),
                };
                let unit = match p.next_token().token {
                    Token::Word(w) => w.value.to_ascii_uppercase(),
                    other => return Err(SqlError::syntax_near(&other.to_string())),
                };
                retention = Some((n, unit));
            } else if word(p, "AUTO_CLEANUP") {
                p.expect_token(&Token::Eq).map_err(perr)?;
                auto_cleanup = Some(on_off(p)?);
            } else {
                return Err(SqlError::syntax_near(&p.peek_token().token.to_string()));
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(perr)?;
    }
    Ok(AlterDatabase {
        name,
        option: DatabaseOption::ChangeTracking {
            on,
            retention,
            auto_cleanup,
        },
    })
}
