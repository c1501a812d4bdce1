//! A small tokenizer for the statements sqlparser's Databricks dialect does
//! not read (GRANT, DESCRIBE HISTORY, ALTER TABLE forms, COPY INTO, ...):
//! words, backticked identifiers, string literals, numbers and punctuation,
//! each with its byte range in the statement text so a caller can hand a
//! part of the text (a COPY INTO's SELECT) to sqlparser.

use std::ops::Range;

use super::error::SqlError;
use super::privileges::SecurableType;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// A bare word (keyword or identifier).
    Word(String),
    /// A backticked identifier.
    Quoted(String),
    /// A string literal.
    Str(String),
    Num(String),
    Punct(char),
}

/// The tokens of a statement; `None` when a quote is not closed.
pub(super) fn tokenize(text: &str) -> Option<Vec<Tok>> {
    Some(tokenize_spans(text)?.into_iter().map(|(t, _)| t).collect())
}

/// The tokens of a statement with their byte ranges in `text`.
pub(super) fn tokenize_spans(text: &str) -> Option<Vec<(Tok, Range<usize>)>> {
    let mut out: Vec<(Tok, Range<usize>)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    let end_of = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        chars.peek().map(|(i, _)| *i).unwrap_or(text.len())
    };
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '`' || c == '\'' || c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                let (_, n) = chars.next()?;
                if n == c {
                    if chars.peek().map(|(_, p)| *p) == Some(c) {
                        chars.next();
                        s.push(c);
                        continue;
                    }
                    break;
                }
                s.push(n);
            }
            let tok = if c == '`' {
                Tok::Quoted(s)
            } else {
                Tok::Str(s)
            };
            out.push((tok, start..end_of(&mut chars)));
        } else if c.is_ascii_digit()
            || (c == '-' && out.last().map(|(t, _)| t) == Some(&Tok::Punct('=')))
        {
            let mut s = String::new();
            s.push(c);
            chars.next();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '.' {
                    s.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((Tok::Num(s), start..end_of(&mut chars)));
        } else if c.is_alphanumeric() || c == '_' {
            let mut s = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_alphanumeric() || n == '_' {
                    s.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((Tok::Word(s), start..end_of(&mut chars)));
        } else {
            chars.next();
            out.push((Tok::Punct(c), start..end_of(&mut chars)));
        }
    }
    Some(out)
}

pub(super) struct Cursor {
    pub(super) toks: Vec<Tok>,
    pub(super) pos: usize,
}

impl Cursor {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(kw))
        }
    }

    pub(super) fn eat_punct(&mut self, p: char) -> bool {
        let yes = self.peek() == Some(&Tok::Punct(p));
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn unexpected(&self, wanted: &str) -> SqlError {
        let got = match self.peek() {
            None => "end of input".to_string(),
            Some(Tok::Word(w) | Tok::Quoted(w) | Tok::Num(w)) => format!("'{w}'"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Punct(c)) => format!("'{c}'"),
        };
        SqlError::syntax(&format!("at or near {got}: expected {wanted}"))
    }

    pub(super) fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    /// `a`, `a.b` or `a.b.c`.
    pub(super) fn name(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?];
        while self.eat_punct('.') {
            parts.push(self.ident()?);
        }
        if parts.len() > 3 {
            return Err(SqlError::syntax(&format!(
                "the name {} has too many parts",
                parts.join(".")
            )));
        }
        Ok(parts)
    }

    /// A user, service principal or group: backticked (needed for names
    /// with `@`), a string or a plain word.
    pub(super) fn principal(&mut self) -> Result<String, SqlError> {
        match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Quoted(w) | Tok::Str(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected("a principal")),
        }
    }

    pub(super) fn done(&self) -> Result<(), SqlError> {
        if self.pos == self.toks.len() {
            Ok(())
        } else {
            Err(self.unexpected("end of statement"))
        }
    }

    /// `ON [CATALOG | SCHEMA | DATABASE | TABLE | VOLUME] name`.
    pub(super) fn object(&mut self) -> Result<(SecurableType, Vec<String>), SqlError> {
        let ty = match self.peek() {
            Some(Tok::Word(w)) => SecurableType::parse(w),
            _ => None,
        };
        match ty {
            Some(t) => {
                self.pos += 1;
                if t == SecurableType::Catalog
                    && (self.is_kw("TO") || self.is_kw("FROM") || self.peek().is_none())
                {
                    return Ok((t, vec![]));
                }
                Ok((t, self.name()?))
            }
            None => Ok((SecurableType::Table, self.name()?)),
        }
    }

    /// `privilege [, ...]` up to ON, each privilege one or more words.
    pub(super) fn privileges(&mut self) -> Result<Vec<String>, SqlError> {
        let mut out = Vec::new();
        let mut cur: Vec<String> = Vec::new();
        loop {
            if self.is_kw("ON") || self.peek().is_none() {
                break;
            }
            match self.peek().cloned() {
                Some(Tok::Punct(',')) => {
                    self.pos += 1;
                    out.push(cur.join(" "));
                    cur.clear();
                }
                Some(Tok::Word(w)) => {
                    self.pos += 1;
                    cur.push(w);
                }
                _ => return Err(self.unexpected("a privilege")),
            }
        }
        if !cur.is_empty() {
            out.push(cur.join(" "));
        }
        if out.is_empty() || out.iter().any(String::is_empty) {
            return Err(self.unexpected("a privilege"));
        }
        Ok(out)
    }

    /// A property key: dotted words or a string.
    pub(super) fn property_key(&mut self) -> Result<String, SqlError> {
        if let Some(Tok::Str(s)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(s);
        }
        Ok(self.name_any()?.join("."))
    }

    /// Dotted words with no limit on parts (property keys).
    pub(super) fn name_any(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?];
        while self.eat_punct('.') {
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    pub(super) fn property_value(&mut self) -> Result<String, SqlError> {
        match self.peek().cloned() {
            Some(Tok::Str(s) | Tok::Num(s) | Tok::Word(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a property value")),
        }
    }

    /// `( key = value [, ...] )`, `=` optional as Spark allows.
    pub(super) fn properties(&mut self) -> Result<Vec<(String, String)>, SqlError> {
        if !self.eat_punct('(') {
            return Err(self.unexpected("'('"));
        }
        let mut out = Vec::new();
        loop {
            let k = self.property_key()?;
            self.eat_punct('=');
            let v = self.property_value()?;
            out.push((k, v));
            if self.eat_punct(')') {
                return Ok(out);
            }
            if !self.eat_punct(',') {
                return Err(self.unexpected("',' or ')'"));
            }
        }
    }

    /// `( key [, ...] )`.
    pub(super) fn property_keys(&mut self) -> Result<Vec<String>, SqlError> {
        if !self.eat_punct('(') {
            return Err(self.unexpected("'('"));
        }
        let mut out = Vec::new();
        loop {
            out.push(self.property_key()?);
            if self.eat_punct(')') {
                return Ok(out);
            }
            if !self.eat_punct(',') {
                return Err(self.unexpected("',' or ')'"));
            }
        }
    }
}

/// Spark's string literals as the SQL engine underneath reads them. Spark
/// escapes a quote inside a literal with a backslash (`'O\'Brien'`); two
/// quotes end one literal and start the next, and adjacent literals are one
/// string ("literal chaining"), so `'O''Brien'` is `OBrien`
/// (https://docs.databricks.com/en/sql/language-manual/data-types/string-type.html).
/// The parser the double uses reads `''` as an escaped quote, as standard
/// SQL does; here every `''` (or `""`) inside a literal is dropped first,
/// which is what chaining the two literals gives.
pub(super) fn chain_adjacent_literals(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("''") && !text.contains("\"\"") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    // The quote of the literal being read, if any.
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    out.push(c);
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else if c == q && chars.peek() == Some(&q) {
                    // Closed and opened again: the same literal goes on.
                    chars.next();
                } else {
                    if c == q {
                        quote = None;
                    }
                    out.push(c);
                }
            }
            None => {
                match c {
                    '\'' | '"' => quote = Some(c),
                    '`' => {
                        // An identifier: copied as it is.
                        out.push(c);
                        for n in chars.by_ref() {
                            out.push(n);
                            if n == '`' {
                                break;
                            }
                        }
                        continue;
                    }
                    '-' if chars.peek() == Some(&'-') => {
                        out.push(c);
                        for n in chars.by_ref() {
                            out.push(n);
                            if n == '\n' {
                                break;
                            }
                        }
                        continue;
                    }
                    _ => {}
                }
                out.push(c);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod literal_tests {
    use super::chain_adjacent_literals as chain;

    #[test]
    fn two_quotes_chain_two_literals() {
        assert_eq!(chain("SELECT 'O''Brien'"), "SELECT 'OBrien'");
        assert_eq!(chain(r"SELECT 'O\'Brien'"), r"SELECT 'O\'Brien'");
        assert_eq!(chain("SELECT '' AS e"), "SELECT '' AS e");
        assert_eq!(chain("SELECT ''''"), "SELECT ''");
        assert_eq!(chain("SELECT `a''b`, 'x'"), "SELECT `a''b`, 'x'");
        assert_eq!(
            chain("SELECT 1 -- it''s\n, 'a''b'"),
            "SELECT 1 -- it''s\n, 'ab'"
        );
        assert_eq!(chain("SELECT \"a\"\"b\""), "SELECT \"ab\"");
    }
}
