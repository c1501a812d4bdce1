//! A T-SQL batch as a tree of blocks: statements, BEGIN...END, IF/ELSE,
//! WHILE, TRY/CATCH, EXEC calls and the CREATE PROCEDURE/VIEW bodies, which
//! must stand alone in their batch. sqlparser parses each statement; the
//! control-of-flow structure, EXEC's argument forms (`@p = v OUTPUT`,
//! `EXEC @rc = proc`), `DELETE TOP (n)` and the trailing comma SQL Server
//! allows in CREATE TABLE are read here, from the token stream.

use sqlparser::ast::{self, Expr, ObjectName, Statement};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::alter::{self, AlterDatabase, AlterTable, TriggerDef};
pub use crate::engine::catalog::ProcParam;
use crate::engine::error::SqlError;
use crate::engine::parse::{options, syntax};
use crate::engine::typename::parse_sql_type;

/// One argument of an EXEC call.
#[derive(Clone, Debug)]
pub struct ExecArg {
    pub name: Option<String>,
    /// `None` for the DEFAULT keyword.
    pub value: Option<Expr>,
    pub output: bool,
}

#[derive(Clone, Debug)]
pub struct ExecCall {
    /// `EXEC @rc = proc`: the variable that receives the return status.
    pub status_var: Option<String>,
    pub name: ObjectName,
    pub args: Vec<ExecArg>,
}

#[derive(Clone, Debug)]
pub struct ProcDef {
    pub name: ObjectName,
    pub or_alter: bool,
    pub params: Vec<ProcParam>,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct ViewDef {
    pub name: ObjectName,
    pub or_alter: bool,
    pub columns: Vec<String>,
    pub body: String,
}

#[derive(Clone, Debug)]
pub enum Block {
    /// A statement, with what its tokens said outside the AST.
    Stmt(Box<Statement>, StmtHints),
    Seq(Vec<Block>),
    If {
        cond: Expr,
        then: Box<Block>,
        otherwise: Option<Box<Block>>,
    },
    While {
        cond: Expr,
        body: Box<Block>,
    },
    Break,
    Continue,
    TryCatch {
        body: Vec<Block>,
        handler: Vec<Block>,
    },
    Exec(ExecCall),
    /// `EXEC (expr)` / `EXECUTE ('...')`: dynamic SQL.
    ExecDynamic(Expr),
    Return(Option<Expr>),
    CreateProcedure(ProcDef),
    CreateView(ViewDef),
    /// CREATE LOGIN name WITH PASSWORD = '...' [, options].
    CreateLogin {
        name: String,
        password: String,
    },
    /// CREATE LOGIN [domain\user] FROM WINDOWS.
    CreateWindowsLogin(String),
    /// CREATE LOGIN name FROM EXTERNAL PROVIDER WITH OBJECT_ID = '...'.
    CreateExternalLogin {
        name: String,
        object_id: String,
    },
    /// CREATE USER name FROM EXTERNAL PROVIDER WITH OBJECT_ID = '...', in
    /// the current database.
    CreateExternalUser {
        name: String,
        object_id: String,
    },
    DropLogin(String),
    AlterTable(AlterTable),
    /// CREATE [OR ALTER] TRIGGER / ALTER TRIGGER, with its body.
    CreateTrigger(TriggerDef),
    DropTrigger {
        names: Vec<ObjectName>,
        if_exists: bool,
    },
    /// `{ENABLE | DISABLE} TRIGGER {ALL | names} ON table`.
    EnableTrigger {
        enable: bool,
        names: Option<Vec<String>>,
        table: ObjectName,
    },
    AlterDatabase(AlterDatabase),
    /// `WITH CHANGE_TRACKING_CONTEXT (context) <DML statement>`: the change
    /// tracking records the statement makes carry `context`.
    TrackingContext {
        context: Expr,
        body: Box<Block>,
    },
}

/// Byte offset of a token location (1-based line and character column).
fn offset(text: &str, loc: Location) -> usize {
    let mut line = 1u64;
    let mut start = 0usize;
    if loc.line > 1 {
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line += 1;
                if line == loc.line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    let rest = &text[start..];
    rest.char_indices()
        .nth(loc.column.saturating_sub(1) as usize)
        .map(|(i, _)| start + i)
        .unwrap_or(text.len())
}

fn is_word(t: &Token, kw: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == kw)
}

fn word_is(t: &Token, text: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text))
}

fn is_space(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// Tokens without whitespace and comments; trailing commas before `)`
/// dropped (CREATE TABLE allows one); `DELETE TOP (n)` turned into a
/// recorded limit.
/// What the token pass takes out of a statement for the parser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StmtHints {
    /// The `n` of a `DELETE TOP (n)`.
    pub delete_top: Option<String>,
    /// `OPTION (MAXRECURSION n)`.
    pub max_recursion: Option<u32>,
}

/// Found in a batch: `DELETE TOP (n)` limits by the DELETE token's
/// location, MAXRECURSION values by their OPTION token's.
#[derive(Default)]
struct Marks {
    tops: Vec<(Location, String)>,
    max_recursion: Vec<(Location, u32)>,
}

/// The MAXRECURSION value among a query hint list (`toks` from `(` to
/// `)`); above 32767 is error 310.
fn max_recursion(toks: &[TokenWithSpan]) -> Result<Option<u32>, SqlError> {
    for (i, t) in toks.iter().enumerate() {
        if !word_is(&t.token, "MAXRECURSION") {
            continue;
        }
        let Some(Token::Number(n, _)) = toks.get(i + 1).map(|t| &t.token) else {
            return Err(SqlError::syntax_near("MAXRECURSION").batch());
        };
        let v: u64 = n.parse().map_err(|_| SqlError::syntax_near(n).batch())?;
        if v > 32767 {
            return Err(SqlError::new(
                310,
                1,
                15,
                format!("The value {v} specified for the MAXRECURSION option exceeds the allowed maximum of 32767."),
            )
            .batch());
        }
        return Ok(Some(v as u32));
    }
    Ok(None)
}

fn tokens(sql: &str) -> Result<(Vec<TokenWithSpan>, Marks), SqlError> {
    let dialect = MsSqlDialect {};
    let raw = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::new(102, 1, 15, format!("Incorrect syntax: {e}")).batch())?;
    let toks: Vec<TokenWithSpan> = raw.into_iter().filter(|t| !is_space(&t.token)).collect();
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(toks.len());
    let mut marks = Marks::default();
    // Inside a CREATE TABLE column list: (paren depth, next token starts a column).
    let mut table_def: Option<(i32, bool)> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if matches!(t.token, Token::Comma)
            && matches!(toks.get(i + 1).map(|t| &t.token), Some(Token::RParen))
        {
            i += 1;
            continue;
        }
        if is_word(&t.token, Keyword::TABLE)
            && i > 0
            && (is_word(&toks[i - 1].token, Keyword::CREATE)
                || matches!(&toks[i - 1].token, Token::Word(w) if w.value.starts_with('@')))
        {
            table_def = Some((0, false));
        }
        if let Some((depth, col_start)) = table_def.as_mut() {
            match &t.token {
                Token::LParen => {
                    *depth += 1;
                    *col_start = *depth == 1;
                    out.push(t.clone());
                    i += 1;
                    continue;
                }
                Token::RParen => {
                    *depth -= 1;
                    if *depth == 0 {
                        table_def = None;
                    }
                }
                Token::Comma if *depth == 1 => {
                    *col_start = true;
                    out.push(t.clone());
                    i += 1;
                    continue;
                }
                // SQL Server's computed column `c AS (expr) [PERSISTED]`: a
                // generated column to sqlparser (its type comes from the expression).
                Token::Word(w)
                    if *col_start
                        && w.keyword == Keyword::NoKeyword
                        && toks
                            .get(i + 1)
                            .is_some_and(|n| is_word(&n.token, Keyword::AS))
                        && matches!(toks.get(i + 2).map(|t| &t.token), Some(Token::LParen)) =>
                {
                    out.push(t.clone());
                    for w in ["INT", "GENERATED", "ALWAYS"] {
                        out.push(TokenWithSpan {
                            token: Token::make_word(w, None),
                            span: t.span,
                        });
                    }
                    *col_start = false;
                    i += 1;
                    continue;
                }
                tok if *depth == 1 && word_is(tok, "PERSISTED") => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            if let Some((_, c)) = table_def.as_mut() {
                *c = false;
            }
        }
        // `CHANGETABLE(CHANGES t, v)` / `CHANGETABLE(VERSION t, (k), (v))`:
        // the first two arguments become strings sqlparser can read
        // (`CHANGETABLE('CHANGES', 't', v)`); `FORCESEEK` goes.
        if word_is(&t.token, "CHANGETABLE")
            && matches!(toks.get(i + 1).map(|t| &t.token), Some(Token::LParen))
            && toks
                .get(i + 2)
                .is_some_and(|t| word_is(&t.token, "CHANGES") || word_is(&t.token, "VERSION"))
        {
            let kind = toks[i + 2].token.to_string().to_ascii_uppercase();
            out.push(t.clone());
            out.push(toks[i + 1].clone());
            out.push(TokenWithSpan {
                token: Token::SingleQuotedString(kind),
                span: toks[i + 2].span,
            });
            let mut j = i + 3;
            let mut name = String::new();
            while let Some(tok) = toks.get(j) {
                if matches!(tok.token, Token::Comma | Token::RParen) {
                    break;
                }
                name.push_str(&tok.token.to_string());
                j += 1;
            }
            out.push(TokenWithSpan {
                token: Token::Comma,
                span: toks[i + 2].span,
            });
            out.push(TokenWithSpan {
                token: Token::SingleQuotedString(name),
                span: toks[i + 2].span,
            });
            i = j;
            continue;
        }
        if matches!(t.token, Token::Comma)
            && toks
                .get(i + 1)
                .is_some_and(|t| word_is(&t.token, "FORCESEEK"))
            && matches!(toks.get(i + 2).map(|t| &t.token), Some(Token::RParen))
        {
            i += 2;
            continue;
        }
        // Query hints, `OPTION ( <query_hint> [ ,...n ] )` after a SELECT,
        // INSERT, UPDATE, DELETE or MERGE
        // (https://learn.microsoft.com/en-us/sql/t-sql/queries/hints-transact-sql-query):
        // plan choices (RECOMPILE, MAXDOP n, OPTIMIZE FOR, USE HINT, joins...)
        // that do not change a result, so SQLite's plan stands and the clause
        // goes. MAXRECURSION is kept aside for the statement: it limits its
        // recursive CTEs (compile/query.rs).
        if is_word(&t.token, Keyword::OPTION)
            && matches!(toks.get(i + 1).map(|t| &t.token), Some(Token::LParen))
        {
            let mut depth = 0;
            let mut j = i + 1;
            while let Some(tok) = toks.get(j) {
                match tok.token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            if depth != 0 {
                return Err(SqlError::syntax_near("OPTION").batch());
            }
            if let Some(n) = max_recursion(&toks[i + 1..j])? {
                marks.max_recursion.push((t.span.start, n));
            }
            i = j;
            continue;
        }
        // A column's `FOREIGN KEY REFERENCES t(c)`: T-SQL's optional words.
        if is_word(&t.token, Keyword::FOREIGN)
            && toks
                .get(i + 1)
                .is_some_and(|t| is_word(&t.token, Keyword::KEY))
            && toks
                .get(i + 2)
                .is_some_and(|t| is_word(&t.token, Keyword::REFERENCES))
        {
            i += 2;
            continue;
        }
        if is_word(&t.token, Keyword::DELETE)
            && toks
                .get(i + 1)
                .is_some_and(|t| is_word(&t.token, Keyword::TOP))
            && matches!(toks.get(i + 2).map(|t| &t.token), Some(Token::LParen))
            && matches!(toks.get(i + 4).map(|t| &t.token), Some(Token::RParen))
        {
            let n = match &toks[i + 3].token {
                Token::Number(n, _) => Some(n.clone()),
                Token::Word(w) if w.value.starts_with('@') => Some(w.value.clone()),
                _ => None,
            };
            if let Some(n) = n {
                marks.tops.push((t.span.start, n));
                out.push(t.clone());
                i += 5;
                continue;
            }
        }
        // `DELETE t WHERE ...`: FROM is optional in T-SQL. (Not the DELETE of
        // `ON DELETE CASCADE` or of a trigger's `AFTER INSERT, DELETE AS`.)
        let after_event_word = out.last().is_some_and(|p| {
            matches!(p.token, Token::Comma)
                || is_word(&p.token, Keyword::ON)
                || is_word(&p.token, Keyword::FOR)
                || is_word(&p.token, Keyword::AFTER)
                || is_word(&p.token, Keyword::OF)
        });
        if is_word(&t.token, Keyword::DELETE) && !after_event_word {
            if let Some(Token::Word(w)) = toks.get(i + 1).map(|t| &t.token) {
                if w.keyword != Keyword::FROM && w.keyword != Keyword::TOP {
                    let mut j = i + 2;
                    while matches!(toks.get(j).map(|t| &t.token), Some(Token::Period))
                        && matches!(toks.get(j + 1).map(|t| &t.token), Some(Token::Word(_)))
                    {
                        j += 2;
                    }
                    if !toks
                        .get(j)
                        .is_some_and(|t| is_word(&t.token, Keyword::FROM))
                    {
                        out.push(t.clone());
                        out.push(TokenWithSpan {
                            token: Token::make_keyword("FROM"),
                            span: t.span,
                        });
                        i += 1;
                        continue;
                    }
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    Ok((out, marks))
}

/// Parses one batch into blocks.
pub fn parse_batch(sql: &str) -> Result<Vec<Block>, SqlError> {
    let (toks, marks) = tokens(sql)?;
    let mut p = Parser::new(&MsSqlDialect {})
        .with_options(options())
        .with_tokens_with_locations(toks);
    let mut b = BatchParser { sql, marks };
    let blocks = b.blocks(&mut p, false)?;
    Ok(blocks)
}

struct BatchParser<'s> {
    sql: &'s str,
    marks: Marks,
}

impl BatchParser<'_> {
    /// Statements until EOF, or until END when `in_block`.
    fn blocks(&mut self, p: &mut Parser<'_>, in_block: bool) -> Result<Vec<Block>, SqlError> {
        let mut out = Vec::new();
        loop {
            while p.consume_token(&Token::SemiColon) {}
            let t = p.peek_token();
            match &t.token {
                Token::EOF => {
                    if in_block {
                        return Err(SqlError::syntax_near("END").batch());
                    }
                    return Ok(out);
                }
                tok if in_block && is_word(tok, Keyword::END) => return Ok(out),
                _ => out.push(self.block(p)?),
            }
        }
    }

    /// One statement or block.
    fn block(&mut self, p: &mut Parser<'_>) -> Result<Block, SqlError> {
        let t = p.peek_token();
        let next = p.peek_nth_token(1).token;
        match &t.token {
            tok if is_word(tok, Keyword::BEGIN) => {
                if is_word(&next, Keyword::TRY) {
                    p.next_token();
                    p.next_token();
                    let body = self.blocks(p, true)?;
                    self.expect(p, Keyword::END)?;
                    self.expect(p, Keyword::TRY)?;
                    while p.consume_token(&Token::SemiColon) {}
                    self.expect(p, Keyword::BEGIN)?;
                    self.expect(p, Keyword::CATCH)?;
                    let handler = self.blocks(p, true)?;
                    self.expect(p, Keyword::END)?;
                    self.expect(p, Keyword::CATCH)?;
                    return Ok(Block::TryCatch { body, handler });
                }
                let tran = is_word(&next, Keyword::TRAN)
                    || is_word(&next, Keyword::TRANSACTION)
                    || word_is(&next, "DISTRIBUTED");
                if tran {
                    return self.statement(p);
                }
                p.next_token();
                let body = self.blocks(p, true)?;
                self.expect(p, Keyword::END)?;
                Ok(Block::Seq(body))
            }
            tok if is_word(tok, Keyword::IF) => {
                p.next_token();
                let cond = p.parse_expr().map_err(syntax)?;
                let then = Box::new(self.block(p)?);
                while matches!(p.peek_token().token, Token::SemiColon)
                    && is_word(&p.peek_nth_token(1).token, Keyword::ELSE)
                {
                    p.next_token();
                }
                let otherwise = if p.parse_keyword(Keyword::ELSE) {
                    Some(Box::new(self.block(p)?))
                } else {
                    None
                };
                Ok(Block::If {
                    cond,
                    then,
                    otherwise,
                })
            }
            tok if is_word(tok, Keyword::WHILE) => {
                p.next_token();
                let cond = p.parse_expr().map_err(syntax)?;
                let body = Box::new(self.block(p)?);
                Ok(Block::While { cond, body })
            }
            tok if word_is(tok, "BREAK") => {
                p.next_token();
                Ok(Block::Break)
            }
            tok if is_word(tok, Keyword::CONTINUE) => {
                p.next_token();
                Ok(Block::Continue)
            }
            tok if is_word(tok, Keyword::RETURN) => {
                p.next_token();
                let value = match p.peek_token().token {
                    Token::EOF | Token::SemiColon => None,
                    Token::Word(ref w) if starts_statement(w.keyword) => None,
                    _ => Some(p.parse_expr().map_err(syntax)?),
                };
                Ok(Block::Return(value))
            }
            tok if is_word(tok, Keyword::EXEC) || is_word(tok, Keyword::EXECUTE) => self.exec(p),
            tok if is_word(tok, Keyword::CREATE) => {
                let (kw, skip) = if is_word(&next, Keyword::OR) {
                    (p.peek_nth_token(3).token, 4)
                } else {
                    (next.clone(), 2)
                };
                let or_alter = skip == 4;
                if word_is(&kw, "PROC") || is_word(&kw, Keyword::PROCEDURE) {
                    for _ in 0..skip {
                        p.next_token();
                    }
                    return self.procedure(p, or_alter);
                }
                if word_is(&kw, "LOGIN") && skip == 2 {
                    p.next_token();
                    p.next_token();
                    return self.create_login(p);
                }
                // CREATE USER name FROM EXTERNAL PROVIDER: a contained
                // database user for a Microsoft Entra principal.
                if is_word(&kw, Keyword::USER)
                    && skip == 2
                    && is_word(&p.peek_nth_token(3).token, Keyword::FROM)
                    && word_is(&p.peek_nth_token(4).token, "EXTERNAL")
                {
                    p.next_token();
                    p.next_token();
                    let name = p.parse_identifier().map_err(syntax)?.value;
                    self.expect(p, Keyword::FROM)?;
                    return match self.external_login(p, name)? {
                        Block::CreateExternalLogin { name, object_id } => {
                            Ok(Block::CreateExternalUser { name, object_id })
                        }
                        other => Ok(other),
                    };
                }
                if is_word(&kw, Keyword::VIEW) {
                    for _ in 0..skip {
                        p.next_token();
                    }
                    return self.view(p, or_alter);
                }
                if is_word(&kw, Keyword::TRIGGER) {
                    for _ in 0..skip {
                        p.next_token();
                    }
                    let mut def = alter::trigger_head(p, or_alter, false)?;
                    def.body = self.rest(p);
                    return Ok(Block::CreateTrigger(def));
                }
                self.statement(p)
            }
            tok if is_word(tok, Keyword::ALTER) && is_word(&next, Keyword::TABLE) => {
                p.next_token();
                p.next_token();
                Ok(Block::AlterTable(alter::alter_table(p)?))
            }
            tok if is_word(tok, Keyword::ALTER) && is_word(&next, Keyword::TRIGGER) => {
                p.next_token();
                p.next_token();
                let mut def = alter::trigger_head(p, true, true)?;
                def.body = self.rest(p);
                Ok(Block::CreateTrigger(def))
            }
            // https://learn.microsoft.com/en-us/sql/relational-databases/system-functions/with-change-tracking-context-transact-sql
            tok if is_word(tok, Keyword::WITH) && word_is(&next, "CHANGE_TRACKING_CONTEXT") => {
                p.next_token();
                p.next_token();
                p.expect_token(&Token::LParen).map_err(syntax)?;
                let context = p.parse_expr().map_err(syntax)?;
                p.expect_token(&Token::RParen).map_err(syntax)?;
                let at = p.peek_token();
                let body = self.block(p)?;
                let dml = matches!(&body, Block::Stmt(s, _) if matches!(
                    **s,
                    Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)
                ));
                if !dml {
                    return Err(SqlError::syntax_near(&at.token.to_string()).batch());
                }
                Ok(Block::TrackingContext {
                    context,
                    body: Box::new(body),
                })
            }
            tok if is_word(tok, Keyword::ALTER) && is_word(&next, Keyword::DATABASE) => {
                p.next_token();
                p.next_token();
                Ok(Block::AlterDatabase(alter::alter_database(p)?))
            }
            tok if is_word(tok, Keyword::DROP) && is_word(&next, Keyword::TRIGGER) => {
                p.next_token();
                p.next_token();
                let (names, if_exists) = alter::drop_trigger(p)?;
                Ok(Block::DropTrigger { names, if_exists })
            }
            tok if (word_is(tok, "ENABLE") || word_is(tok, "DISABLE"))
                && is_word(&next, Keyword::TRIGGER) =>
            {
                let enable = word_is(tok, "ENABLE");
                p.next_token();
                let (names, table) = alter::enable_trigger(p)?;
                Ok(Block::EnableTrigger {
                    enable,
                    names,
                    table,
                })
            }
            tok if is_word(tok, Keyword::DROP) && word_is(&next, "LOGIN") => {
                p.next_token();
                p.next_token();
                let name = p.parse_identifier().map_err(syntax)?.value;
                Ok(Block::DropLogin(name))
            }
            tok if is_word(tok, Keyword::ALTER)
                && (word_is(&next, "PROC") || is_word(&next, Keyword::PROCEDURE)) =>
            {
                p.next_token();
                p.next_token();
                self.procedure(p, true)
            }
            _ => self.statement(p),
        }
    }

    fn expect(&self, p: &mut Parser<'_>, kw: Keyword) -> Result<(), SqlError> {
        p.expect_keyword(kw).map(|_| ()).map_err(syntax)
    }

    fn statement(&mut self, p: &mut Parser<'_>) -> Result<Block, SqlError> {
        let start = p.peek_token().span.start;
        let stmt = p.parse_statement().map_err(syntax)?;
        // What the token pass set aside stood between the statement's first
        // token and the next statement's (the OPTION clause ends it; a
        // DELETE may follow a WITH clause).
        let next = p.peek_token();
        let key = |l: Location| (l.line, l.column);
        let within = |loc: &Location| {
            key(*loc) >= key(start)
                && (matches!(next.token, Token::EOF) || key(*loc) < key(next.span.start))
        };
        let deletes = match &stmt {
            Statement::Delete(_) => true,
            Statement::Query(q) => matches!(*q.body, ast::SetExpr::Delete(_)),
            _ => false,
        };
        let delete_top = if deletes {
            self.marks
                .tops
                .iter()
                .find(|(loc, _)| within(loc))
                .map(|(_, n)| n.clone())
        } else {
            None
        };
        let max_recursion = self
            .marks
            .max_recursion
            .iter()
            .find(|(loc, _)| within(loc))
            .map(|(_, n)| *n);
        Ok(Block::Stmt(
            Box::new(stmt),
            StmtHints {
                delete_top,
                max_recursion,
            },
        ))
    }

    /// `EXEC [@rc =] name [args]` or `EXEC (expression)`.
    fn exec(&mut self, p: &mut Parser<'_>) -> Result<Block, SqlError> {
        p.next_token();
        if matches!(p.peek_token().token, Token::LParen) {
            let e = p.parse_expr().map_err(syntax)?;
            return Ok(Block::ExecDynamic(e));
        }
        let mut status_var = None;
        if let Token::Word(w) = p.peek_token().token {
            if w.value.starts_with('@') && matches!(p.peek_nth_token(1).token, Token::Eq) {
                p.next_token();
                p.next_token();
                status_var = Some(w.value.clone());
            }
        }
        let name = p.parse_object_name(false).map_err(syntax)?;
        let mut args = Vec::new();
        let ends = |t: &Token| match t {
            Token::EOF | Token::SemiColon => true,
            Token::Word(w) => w.quote_style.is_none() && starts_statement(w.keyword),
            _ => false,
        };
        if !ends(&p.peek_token().token) {
            loop {
                let mut arg_name = None;
                if let Token::Word(w) = p.peek_token().token {
                    if w.value.starts_with('@') && matches!(p.peek_nth_token(1).token, Token::Eq) {
                        p.next_token();
                        p.next_token();
                        arg_name = Some(w.value.clone());
                    }
                }
                let value = if p.parse_keyword(Keyword::DEFAULT) {
                    None
                } else {
                    Some(p.parse_expr().map_err(syntax)?)
                };
                let output = p.parse_keyword(Keyword::OUTPUT) || p.parse_keyword(Keyword::OUT);
                args.push(ExecArg {
                    name: arg_name,
                    value,
                    output,
                });
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
        }
        Ok(Block::Exec(ExecCall {
            status_var,
            name,
            args,
        }))
    }

    /// The rest of the batch from the next token on, as written.
    /// (CREATE PROCEDURE and CREATE VIEW end their batch.)
    fn rest(&self, p: &mut Parser<'_>) -> String {
        let t = p.peek_token();
        if matches!(t.token, Token::EOF) {
            return String::new();
        }
        let text = self.sql[offset(self.sql, t.span.start)..]
            .trim()
            .to_string();
        while !matches!(p.next_token().token, Token::EOF) {}
        text
    }

    /// CREATE [OR ALTER] PROC[EDURE] name [(] @p type [= default] [OUTPUT], ... [)] [WITH ...] AS body
    fn procedure(&mut self, p: &mut Parser<'_>, or_alter: bool) -> Result<Block, SqlError> {
        let name = p.parse_object_name(false).map_err(syntax)?;
        let parens = p.consume_token(&Token::LParen);
        let mut params = Vec::new();
        loop {
            let t = p.peek_token();
            let Token::Word(w) = &t.token else { break };
            if !w.value.starts_with('@') {
                break;
            }
            p.next_token();
            let _ = p.parse_keyword(Keyword::AS);
            let dt = p.parse_data_type().map_err(syntax)?;
            let text = dt.to_string();
            let ty = parse_sql_type(&text).ok_or_else(|| {
                SqlError::new(
                    2715,
                    3,
                    16,
                    format!(
                        "Column, parameter, or variable #{}: Cannot find data type {text}.",
                        params.len() + 1
                    ),
                )
                .batch()
            })?;
            let _ = p.parse_keyword(Keyword::VARYING);
            let default = if p.consume_token(&Token::Eq) {
                let start = offset(self.sql, p.peek_token().span.start);
                let _ = p.parse_expr().map_err(syntax)?;
                let end = offset(self.sql, p.peek_token().span.start);
                let end = if matches!(p.peek_token().token, Token::EOF) {
                    self.sql.len()
                } else {
                    end
                };
                Some(
                    self.sql[start..end]
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .to_string(),
                )
            } else {
                None
            };
            let output = p.parse_keyword(Keyword::OUTPUT) || p.parse_keyword(Keyword::OUT);
            if word_is(&p.peek_token().token, "READONLY") {
                p.next_token();
            }
            params.push(ProcParam {
                name: w.value.clone(),
                ty,
                default,
                output,
            });
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        if parens {
            p.expect_token(&Token::RParen).map_err(syntax)?;
        }
        if p.parse_keyword(Keyword::WITH) {
            while !matches!(p.peek_token().token, Token::EOF) && !p.peek_keyword(Keyword::AS) {
                p.next_token();
            }
        }
        self.expect(p, Keyword::AS)?;
        let body = self.rest(p);
        Ok(Block::CreateProcedure(ProcDef {
            name,
            or_alter,
            params,
            body,
        }))
    }

    /// CREATE LOGIN name WITH PASSWORD = 'secret' [, CHECK_POLICY = OFF, ...]
    fn create_login(&mut self, p: &mut Parser<'_>) -> Result<Block, SqlError> {
        let name = p.parse_identifier().map_err(syntax)?.value;
        if p.parse_keyword(Keyword::FROM) {
            if let Token::Word(w) = &p.peek_token().token {
                if w.value.eq_ignore_ascii_case("WINDOWS") {
                    p.next_token();
                    // WITH DEFAULT_DATABASE = ..., DEFAULT_LANGUAGE = ...
                    // change nothing here.
                    while !matches!(p.peek_token().token, Token::EOF | Token::SemiColon) {
                        p.next_token();
                    }
                    return Ok(Block::CreateWindowsLogin(name));
                }
            }
            return self.external_login(p, name);
        }
        self.expect(p, Keyword::WITH)?;
        self.expect(p, Keyword::PASSWORD)?;
        p.expect_token(&Token::Eq).map_err(syntax)?;
        let password = match p.next_token().token {
            Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) => s,
            other => return Err(SqlError::syntax_near(&other.to_string())),
        };
        // Options (CHECK_POLICY, DEFAULT_DATABASE, ...) change nothing here.
        while p.consume_token(&Token::Comma) {
            p.next_token();
            if p.consume_token(&Token::Eq) {
                p.next_token();
            }
        }
        Ok(Block::CreateLogin { name, password })
    }

    /// `FROM EXTERNAL PROVIDER WITH OBJECT_ID = 'id'` after CREATE LOGIN (or
    /// USER) name.
    /// Azure SQL looks a name up in Microsoft Graph when OBJECT_ID is left
    /// out; the sandbox has no directory to ask, so it needs the id.
    fn external_login(&mut self, p: &mut Parser<'_>, name: String) -> Result<Block, SqlError> {
        self.expect(p, Keyword::EXTERNAL)?;
        let provider = p.parse_identifier().map_err(syntax)?.value;
        if !provider.eq_ignore_ascii_case("PROVIDER") {
            return Err(SqlError::syntax_near(&provider));
        }
        if !p.parse_keyword(Keyword::WITH) {
            return Err(SqlError::new(
                33134,
                1,
                16,
                format!("Principal '{name}' could not be resolved: the sandbox has no Microsoft Graph to look names up in; give WITH OBJECT_ID = '<object or application id>'."),
            ));
        }
        let option = p.parse_identifier().map_err(syntax)?.value;
        if !option.eq_ignore_ascii_case("OBJECT_ID") {
            return Err(SqlError::syntax_near(&option));
        }
        p.expect_token(&Token::Eq).map_err(syntax)?;
        let object_id = match p.next_token().token {
            Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) => s,
            other => return Err(SqlError::syntax_near(&other.to_string())),
        };
        Ok(Block::CreateExternalLogin { name, object_id })
    }

    /// CREATE [OR ALTER] VIEW name [(columns)] [WITH ...] AS select
    fn view(&mut self, p: &mut Parser<'_>, or_alter: bool) -> Result<Block, SqlError> {
        let name = p.parse_object_name(false).map_err(syntax)?;
        let mut columns = Vec::new();
        if p.consume_token(&Token::LParen) {
            loop {
                columns.push(p.parse_identifier().map_err(syntax)?.value);
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen).map_err(syntax)?;
        }
        if p.parse_keyword(Keyword::WITH) {
            while !matches!(p.peek_token().token, Token::EOF) && !p.peek_keyword(Keyword::AS) {
                p.next_token();
            }
        }
        self.expect(p, Keyword::AS)?;
        let body = self.rest(p);
        // The definition must be one query.
        let mut check = Parser::new(&MsSqlDialect {})
            .with_options(options())
            .try_with_sql(&body)
            .map_err(syntax)?;
        check.parse_query().map_err(syntax)?;
        Ok(Block::CreateView(ViewDef {
            name,
            or_alter,
            columns,
            body,
        }))
    }
}

/// Keywords that begin a new statement, so they end an EXEC argument list
/// or a bare RETURN.
fn starts_statement(k: Keyword) -> bool {
    matches!(
        k,
        Keyword::SELECT
            | Keyword::INSERT
            | Keyword::UPDATE
            | Keyword::DELETE
            | Keyword::MERGE
            | Keyword::SET
            | Keyword::DECLARE
            | Keyword::IF
            | Keyword::ELSE
            | Keyword::WHILE
            | Keyword::BEGIN
            | Keyword::END
            | Keyword::RETURN
            | Keyword::EXEC
            | Keyword::EXECUTE
            | Keyword::PRINT
            | Keyword::CREATE
            | Keyword::DROP
            | Keyword::ALTER
            | Keyword::TRUNCATE
            | Keyword::WITH
            | Keyword::USE
            | Keyword::COMMIT
            | Keyword::ROLLBACK
            | Keyword::RAISERROR
            | Keyword::THROW
    )
}

/// Splits a script into batches at `GO` lines, as sqlcmd and SSMS do.
pub fn split_go(script: &str) -> Vec<String> {
    let mut batches = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        let t = line.trim();
        let is_go = t.len() >= 2
            && t[..2].eq_ignore_ascii_case("GO")
            && t[2..]
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';');
        if is_go {
            let count: usize = t[2..].trim().trim_end_matches(';').parse().unwrap_or(1);
            if !cur.trim().is_empty() {
                for _ in 0..count.max(1) {
                    batches.push(cur.clone());
                }
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        batches.push(cur);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_of_flow_without_semicolons() {
        let b = parse_batch(
            "DECLARE @i int = 0\nWHILE @i < 3 BEGIN SET @i = @i + 1 IF @i = 2 BREAK END\nSELECT @i",
        )
        .unwrap();
        assert_eq!(b.len(), 3);
        assert!(matches!(b[1], Block::While { .. }));
        let b = parse_batch("BEGIN SELECT 1 SELECT 2 END").unwrap();
        assert!(matches!(&b[0], Block::Seq(v) if v.len() == 2));
        let b = parse_batch("BEGIN TRAN; SELECT 1; COMMIT").unwrap();
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn exec_forms() {
        let b = parse_batch("declare @rc int; exec @rc = dbo.p @P1, @b = @x OUTPUT; select @rc")
            .unwrap();
        let Block::Exec(e) = &b[1] else {
            panic!("{b:?}")
        };
        assert_eq!(e.status_var.as_deref(), Some("@rc"));
        assert_eq!(e.args.len(), 2);
        assert!(e.args[1].output);
        assert_eq!(e.args[1].name.as_deref(), Some("@b"));
        assert!(matches!(b[2], Block::Stmt(..)));
        let b = parse_batch("EXEC ('SELECT ' + '1')").unwrap();
        assert!(matches!(b[0], Block::ExecDynamic(_)));
    }

    #[test]
    fn procedures_and_views_keep_their_text() {
        let b = parse_batch(
            "create or alter procedure dbo.p\n  @Param1 varchar(50), @n int = 5 OUTPUT\nas\n  insert into ##t (other) values (@Param1)\n  return scope_identity()",
        )
        .unwrap();
        let Block::CreateProcedure(d) = &b[0] else {
            panic!()
        };
        assert!(d.or_alter);
        assert_eq!(d.params.len(), 2);
        assert_eq!(d.params[1].default.as_deref(), Some("5"));
        assert!(d.params[1].output);
        assert!(d.body.starts_with("insert into ##t"));
        let b = parse_batch("CREATE VIEW dbo.v (a) AS SELECT 'it''s' AS x").unwrap();
        let Block::CreateView(v) = &b[0] else {
            panic!()
        };
        assert_eq!(v.body, "SELECT 'it''s' AS x");
        assert_eq!(v.columns, vec!["a".to_string()]);
    }

    #[test]
    fn trailing_comma_and_delete_top() {
        let b = parse_batch("create table ##t (id int identity(1,1), other varchar(50),)").unwrap();
        assert!(matches!(b[0], Block::Stmt(..)));
        let b = parse_batch("DELETE TOP (5) FROM t WHERE a = 1").unwrap();
        let Block::Stmt(_, hints) = &b[0] else {
            panic!()
        };
        assert_eq!(hints.delete_top.as_deref(), Some("5"));
    }
}
