//! String functions with T-SQL's semantics under the default collation
//! (SQL_Latin1_General_CP1_CI_AS: case-insensitive, trailing blanks
//! ignored in comparisons): LIKE and PATINDEX patterns with `[...]`
//! classes, SUBSTRING's start before 1, CHARINDEX and REPLACE that ignore
//! case, CONCAT's NULLs as empty strings, FORMAT, STR and friends.
//! The implementations: the SQLite functions that call them are registered
//! with each built-in's rule in `compile/builtins/strings.rs`; LIKE's
//! `__like` and binary `+`'s `__bconcat` (operators) are registered here.

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::Connection;

pub(crate) fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(super::convert::format_float(f)),
        ValueRef::Blob(b) => Some(b.iter().map(|&c| c as char).collect()),
        ValueRef::Null => None,
    }
}

/// A number however the engine stores it (decimals beyond 15 digits are text).
pub(crate) fn number(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => String::from_utf8_lossy(t).trim().parse().ok(),
        _ => None,
    }
}

fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone)]
enum Pat {
    Any,
    One,
    Char(char),
    Class { neg: bool, items: Vec<(char, char)> },
}

fn compile_pattern(p: &str, escape: Option<char>) -> Vec<Pat> {
    compile_pattern_with(p, escape, lower)
}

/// A LIKE pattern with its characters folded by `lower` (the collation's
/// case and accent folding; identity for a binary or CS_AS collation).
fn compile_pattern_with(p: &str, escape: Option<char>, lower: fn(char) -> char) -> Vec<Pat> {
    let mut out = Vec::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if Some(c) == escape && i + 1 < chars.len() {
            out.push(Pat::Char(lower(chars[i + 1])));
            i += 2;
            continue;
        }
        match c {
            '%' => {
                if !matches!(out.last(), Some(Pat::Any)) {
                    out.push(Pat::Any);
                }
            }
            '_' => out.push(Pat::One),
            '[' => {
                // A class runs to the next ']' (a ']' right after '[' or '[^' is literal).
                let mut j = i + 1;
                let neg = chars.get(j) == Some(&'^');
                if neg {
                    j += 1;
                }
                let start = j;
                while j < chars.len() && (chars[j] != ']' || j == start) {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push(Pat::Char('['));
                } else {
                    let body: Vec<char> = chars[start..j].to_vec();
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            items.push((lower(body[k]), lower(body[k + 2])));
                            k += 3;
                        } else {
                            items.push((lower(body[k]), lower(body[k])));
                            k += 1;
                        }
                    }
                    out.push(Pat::Class { neg, items });
                    i = j;
                }
            }
            other => out.push(Pat::Char(lower(other))),
        }
        i += 1;
    }
    out
}

fn matches_at(pat: &[Pat], s: &[char]) -> bool {
    matches_at_with(pat, s, lower)
}

fn matches_at_with(pat: &[Pat], s: &[char], lower: fn(char) -> char) -> bool {
    // Iterative matcher with backtracking on the last `%`.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let ok = match pat.get(pi) {
            Some(Pat::One) => true,
            Some(Pat::Char(c)) => *c == lower(s[si]),
            Some(Pat::Class { neg, items }) => {
                let ch = lower(s[si]);
                items.iter().any(|(a, b)| *a <= ch && ch <= *b) != *neg
            }
            _ => false,
        };
        if ok {
            pi += 1;
            si += 1;
        } else if let Some(Pat::Any) = pat.get(pi) {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while let Some(Pat::Any) = pat.get(pi) {
        pi += 1;
    }
    pi == pat.len()
}

/// `value LIKE pattern [ESCAPE e]`: trailing blanks of the value are
/// ignored, every character of the pattern counts (the LIKE page).
pub fn like(value: &str, pattern: &str, escape: Option<char>) -> bool {
    like_with(value, pattern, escape, lower)
}

fn same(c: char) -> char {
    c
}

fn lower_no_accent(c: char) -> char {
    lower(super::collation::base_letter(c))
}

fn no_accent(c: char) -> char {
    super::collation::base_letter(c)
}

/// LIKE under a collation (by its SQLite name): case and accents count
/// only where the collation says so.
/// learn.microsoft.com/sql/t-sql/language-elements/like-transact-sql
pub fn like_in(value: &str, pattern: &str, escape: Option<char>, collation: &str) -> bool {
    let fold: fn(char) -> char = match collation {
        "TSQL_CS" | "TSQL_BIN" => same,
        "TSQL_CI_AI" => lower_no_accent,
        "TSQL_CS_AI" => no_accent,
        _ => lower,
    };
    like_with(value, pattern, escape, fold)
}

fn like_with(value: &str, pattern: &str, escape: Option<char>, fold: fn(char) -> char) -> bool {
    let pat = compile_pattern_with(pattern, escape, fold);
    let v: Vec<char> = value.trim_end_matches(' ').chars().collect();
    if matches_at_with(&pat, &v, fold) {
        return true;
    }
    // A pattern with its own trailing blanks may still need them.
    let full: Vec<char> = value.chars().collect();
    full.len() != v.len() && matches_at_with(&pat, &full, fold)
}

pub(crate) fn patindex(pattern: &str, s: &str) -> i64 {
    let chars: Vec<char> = s.chars().collect();
    let lead = pattern.starts_with('%');
    let core = pattern.trim_start_matches('%');
    let pat = compile_pattern(&format!("{core}%"), None);
    let exact = compile_pattern(core, None);
    let ends_any = pattern.ends_with('%');
    let last = if lead { chars.len() } else { 0 };
    for i in 0..=last.min(chars.len()) {
        let rest = &chars[i..];
        let ok = if ends_any {
            matches_at(&pat, rest)
        } else {
            matches_at(&exact, rest)
        };
        if ok {
            return i as i64 + 1;
        }
    }
    0
}

pub(crate) fn ci_find(hay: &[char], needle: &[char], from: usize) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| {
        hay[i..i + needle.len()]
            .iter()
            .zip(needle)
            .all(|(a, b)| lower(*a) == lower(*b))
    })
}

/// SUBSTRING(x, start, length): positions before 1 count against the length.
pub(crate) fn substring_range(len: usize, start: i64, length: i64) -> (usize, usize) {
    let end = start.saturating_add(length); // exclusive, 1-based
    let s = start.max(1);
    let e = end.min(len as i64 + 1);
    if e <= s {
        return (0, 0);
    }
    ((s - 1) as usize, (e - 1) as usize)
}

fn number_culture(culture: Option<&str>) -> (char, char) {
    // (group separator, decimal separator)
    match culture.map(|c| c.to_ascii_lowercase()) {
        Some(c)
            if c.starts_with("de")
                || c.starts_with("es-co")
                || c.starts_with("es-es")
                || c.starts_with("es-ar")
                || c.starts_with("es-cl")
                || c.starts_with("pt")
                || c.starts_with("it")
                || c.starts_with("nl") =>
        {
            ('.', ',')
        }
        Some(c) if c.starts_with("fr") => ('\u{202f}', ','),
        _ => (',', '.'),
    }
}

/// Digits grouped by thousands with `sep`.
pub fn group(int: &str, sep: char) -> String {
    let mut out = String::new();
    let n = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// .NET numeric format strings FORMAT takes: N, F, C, P, D, X with a
/// precision, and custom `#,##0.00`-style patterns.
pub(crate) fn format_number(
    x: f64,
    exact: Option<&str>,
    fmt: &str,
    culture: Option<&str>,
) -> Option<String> {
    let (gs, ds) = number_culture(culture);
    let fixed = |digits: usize, grouping: bool| -> String {
        let s = match exact {
            Some(e) => {
                let d: crate::types::Decimal =
                    e.parse().ok().unwrap_or(crate::types::Decimal::new(0, 0));
                d.round_to(digits as u8)
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| format!("{:.*}", digits, x))
            }
            None => format!("{:.*}", digits, x),
        };
        let (sign, body) = match s.strip_prefix('-') {
            Some(b) => ("-", b),
            None => ("", s.as_str()),
        };
        let (int, fr) = body.split_once('.').unwrap_or((body, ""));
        let int = if grouping {
            group(int, gs)
        } else {
            int.to_string()
        };
        if fr.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}{ds}{fr}")
        }
    };
    let mut cs = fmt.chars();
    let head = cs.next()?;
    let rest: String = cs.collect();
    let prec: Option<usize> = if rest.is_empty() {
        None
    } else {
        rest.parse().ok()
    };
    if rest.is_empty() || prec.is_some() {
        match head.to_ascii_uppercase() {
            'N' => return Some(fixed(prec.unwrap_or(2), true)),
            'F' => return Some(fixed(prec.unwrap_or(2), false)),
            'C' => {
                let v = fixed(prec.unwrap_or(2), true);
                return Some(match v.strip_prefix('-') {
                    Some(b) => format!("-${b}"),
                    None => format!("${v}"),
                });
            }
            'P' => {
                let v =
                    format_number(x * 100.0, None, &format!("N{}", prec.unwrap_or(2)), culture)?;
                return Some(format!("{v}%"));
            }
            'D' => {
                let i = x.trunc() as i64;
                let s = format!("{:0width$}", i.abs(), width = prec.unwrap_or(0));
                return Some(if i < 0 { format!("-{s}") } else { s });
            }
            'X' => {
                let s = format!("{:X}", x.trunc() as i64);
                let s = format!("{s:0>width$}", width = prec.unwrap_or(0));
                return Some(if head == 'x' {
                    s.to_ascii_lowercase()
                } else {
                    s
                });
            }
            'G' => return Some(super::convert::format_float(x)),
            _ => {}
        }
    }
    // Custom pattern: '0' and '#' digits, ',' grouping, '.' decimal point,
    // other characters copied.
    let (int_pat, frac_pat) = fmt.split_once('.').unwrap_or((fmt, ""));
    let decimals = frac_pat.chars().filter(|c| *c == '0' || *c == '#').count();
    let min_decimals = frac_pat.chars().filter(|c| *c == '0').count();
    let grouping = int_pat.contains(',');
    let min_int = int_pat.chars().filter(|c| *c == '0').count();
    let s = format!("{:.*}", decimals, x.abs());
    let (int, fr) = s.split_once('.').unwrap_or((s.as_str(), ""));
    let int = int.trim_start_matches('0');
    let int = format!("{int:0>min_int$}");
    let mut fr = fr.to_string();
    while fr.len() > min_decimals && fr.ends_with('0') {
        fr.pop();
    }
    let digits = if grouping { group(&int, gs) } else { int };
    // Literal characters around the digits (e.g. '###-##-####' keeps its dashes).
    if int_pat.chars().any(|c| !matches!(c, '0' | '#' | ',')) && frac_pat.is_empty() {
        let mut out: Vec<char> = Vec::new();
        let mut ds_iter: Vec<char> = digits.chars().filter(|c| c.is_ascii_digit()).collect();
        for c in int_pat.chars().rev() {
            match c {
                '0' | '#' => {
                    if let Some(d) = ds_iter.pop() {
                        out.push(d);
                    } else if c == '0' {
                        out.push('0');
                    }
                }
                ',' => {}
                other => out.push(other),
            }
        }
        while let Some(d) = ds_iter.pop() {
            out.push(d);
        }
        out.reverse();
        let s: String = out.into_iter().collect();
        return Some(if x < 0.0 { format!("-{s}") } else { s });
    }
    let sign = if x < 0.0 { "-" } else { "" };
    Some(if fr.is_empty() {
        format!("{sign}{digits}")
    } else {
        format!("{sign}{digits}{ds}{fr}")
    })
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// .NET date format strings: custom patterns (yyyy, MM, MMM, MMMM, dd, ddd,
/// dddd, HH, hh, mm, ss, fff..., tt) and the standard 'd', 'D', 'g', 's'.
pub(crate) fn format_date(dt: chrono::NaiveDateTime, fmt: &str) -> String {
    use chrono::{Datelike, Timelike};
    let fmt = match fmt {
        "d" => "M/d/yyyy",
        "D" => "dddd, MMMM d, yyyy",
        "g" => "M/d/yyyy h:mm tt",
        "G" => "M/d/yyyy h:mm:ss tt",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "t" => "h:mm tt",
        "T" => "h:mm:ss tt",
        other => other,
    };
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let h12 = match dt.hour() % 12 {
            0 => 12,
            h => h,
        };
        match c {
            'y' => {
                if n <= 2 {
                    out.push_str(&format!("{:02}", dt.year() % 100));
                } else {
                    out.push_str(&format!("{:0width$}", dt.year(), width = n));
                }
            }
            'M' => match n {
                1 => out.push_str(&dt.month().to_string()),
                2 => out.push_str(&format!("{:02}", dt.month())),
                3 => out.push_str(&MONTH_NAMES[dt.month0() as usize][..3]),
                _ => out.push_str(MONTH_NAMES[dt.month0() as usize]),
            },
            'd' => match n {
                1 => out.push_str(&dt.day().to_string()),
                2 => out.push_str(&format!("{:02}", dt.day())),
                3 => out.push_str(&DAY_NAMES[dt.weekday().num_days_from_monday() as usize][..3]),
                _ => out.push_str(DAY_NAMES[dt.weekday().num_days_from_monday() as usize]),
            },
            'H' => out.push_str(&if n >= 2 {
                format!("{:02}", dt.hour())
            } else {
                dt.hour().to_string()
            }),
            'h' => out.push_str(&if n >= 2 {
                format!("{h12:02}")
            } else {
                h12.to_string()
            }),
            'm' => out.push_str(&if n >= 2 {
                format!("{:02}", dt.minute())
            } else {
                dt.minute().to_string()
            }),
            's' => out.push_str(&if n >= 2 {
                format!("{:02}", dt.second())
            } else {
                dt.second().to_string()
            }),
            'f' | 'F' => {
                let s = format!("{:09}", dt.nanosecond());
                out.push_str(&s[..n.min(9)]);
            }
            't' => {
                let ampm = if dt.hour() < 12 { "AM" } else { "PM" };
                out.push_str(if n == 1 { &ampm[..1] } else { ampm });
            }
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    out
}

/// STR(float, length, decimals): right-justified, `*` when it does not fit.
pub(crate) fn str_fn(f: f64, len: i64, dec: i64) -> Option<String> {
    if !(1..=8000).contains(&len) {
        return None;
    }
    let dec = dec.clamp(0, 16) as usize;
    let mut s = format!("{:.*}", dec, f);
    let len = len as usize;
    if s.len() > len {
        // Fewer decimals first, then give up.
        let int_len = format!("{:.0}", f).len();
        if int_len > len {
            return Some("*".repeat(len));
        }
        let room = len.saturating_sub(int_len + 1);
        s = if room == 0 {
            format!("{:.0}", f)
        } else {
            format!("{:.*}", room, f)
        };
    }
    Some(format!("{s:>len$}"))
}

/// Registers the string functions on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // `__like(value, pattern, escape[, collation])`.
    conn.create_scalar_function("__like", -1, det, |ctx| {
        let (Some(v), Some(p)) = (text(ctx.get_raw(0)), text(ctx.get_raw(1))) else {
            return Ok(None);
        };
        let esc = text(ctx.get_raw(2)).and_then(|e| e.chars().next());
        let coll = if ctx.len() > 3 {
            text(ctx.get_raw(3)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Some(like_in(&v, &p, esc, &coll)))
    })?;
    conn.create_scalar_function("__bconcat", 2, det, |ctx| {
        Ok(match (ctx.get_raw(0), ctx.get_raw(1)) {
            (ValueRef::Null, _) | (_, ValueRef::Null) => Sv::Null,
            (a, b) => {
                let bytes = |v: ValueRef<'_>| match v {
                    ValueRef::Blob(b) => b.to_vec(),
                    ValueRef::Text(t) => t.to_vec(),
                    _ => Vec::new(),
                };
                let mut out = bytes(a);
                out.extend(bytes(b));
                Sv::Blob(out)
            }
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("Bebidas", "b%", None));
        assert!(like("abc  ", "abc", None));
        assert!(!like("abc", "abc ", None));
        assert!(like("a1", "[a-c][0-9]", None));
        assert!(!like("d1", "[a-c][0-9]", None));
        assert!(like("d1", "[^a-c]_", None));
        assert!(like("50%", "50!%", Some('!')));
        assert!(like("x[y", "x[[]y", None));
    }

    #[test]
    fn patindex_and_substring() {
        assert_eq!(patindex("%[0-9]%", "Bebidas12"), 8);
        assert_eq!(patindex("%ter%", "interesting"), 3);
        assert_eq!(patindex("abc", "abcd"), 0);
        assert_eq!(substring_range(3, 0, 2), (0, 1));
        assert_eq!(substring_range(3, -1, 3), (0, 1));
        assert_eq!(substring_range(5, 2, 3), (1, 4));
    }

    #[test]
    fn format_and_str() {
        assert_eq!(
            format_number(123456789.0, None, "###-##-####", None).unwrap(),
            "123-45-6789"
        );
        assert_eq!(format_number(1234.5, None, "N2", None).unwrap(), "1,234.50");
        assert_eq!(
            format_number(1234.5, None, "N2", Some("es-CO")).unwrap(),
            "1.234,50"
        );
        assert_eq!(format_number(0.256, None, "P1", None).unwrap(), "25.6%");
        assert_eq!(str_fn(123.45, 6, 1).unwrap(), " 123.5");
        assert_eq!(str_fn(123.0, 8, 3).unwrap(), " 123.000");
        let dt = chrono::NaiveDate::from_ymd_opt(2024, 1, 31)
            .unwrap()
            .and_hms_opt(13, 5, 0)
            .unwrap();
        assert_eq!(format_date(dt, "dd/MM/yyyy"), "31/01/2024");
        assert_eq!(format_date(dt, "yyyy-MM-dd HH:mm"), "2024-01-31 13:05");
    }
}
