//! Collations: their names (Windows collations `Designator[_version]_CI_AS...`
//! and SQL collations `SQL_Latin1_General_CP1_CI_AS`), the comparisons they
//! mean (case, accent and binary sensitivity, trailing blanks ignored), and
//! the precedence rules that pick one when an operator meets two.
//! learn.microsoft.com/sql/relational-databases/collations/collation-and-unicode-support
//! learn.microsoft.com/sql/t-sql/statements/windows-collation-name-transact-sql
//! learn.microsoft.com/sql/t-sql/statements/sql-server-collation-name-transact-sql
//! learn.microsoft.com/sql/t-sql/statements/collation-precedence-transact-sql

use std::cmp::Ordering;

use rusqlite::Connection;

use super::error::SqlError;
pub use crate::types::Collation;

/// Windows collation designators and their LCIDs (the first of a LCID is
/// the name a collation with it is shown by).
const DESIGNATORS: &[(&str, u32)] = &[
    ("Latin1_General", 0x0409),
    ("Albanian", 0x041C),
    ("Arabic", 0x0401),
    ("Azeri_Cyrillic", 0x082C),
    ("Azeri_Latin", 0x042C),
    ("Bosnian_Cyrillic", 0x201A),
    ("Bosnian_Latin", 0x141A),
    ("Chinese_PRC", 0x0804),
    ("Chinese_PRC_Stroke", 0x20804),
    ("Chinese_Taiwan_Bopomofo", 0x30404),
    ("Chinese_Taiwan_Stroke", 0x0404),
    ("Chinese_Hong_Kong_Stroke", 0x0C04),
    ("Croatian", 0x041A),
    ("Cyrillic_General", 0x0419),
    ("Czech", 0x0405),
    ("Danish_Norwegian", 0x0406),
    ("Divehi", 0x0465),
    ("Estonian", 0x0425),
    ("Finnish_Swedish", 0x040B),
    ("French", 0x040C),
    ("Georgian_Modern_Sort", 0x10437),
    ("German_PhoneBook", 0x10407),
    ("Greek", 0x0408),
    ("Hebrew", 0x040D),
    ("Hindi", 0x0439),
    ("Indic_General", 0x0439),
    ("Hungarian", 0x040E),
    ("Hungarian_Technical", 0x1040E),
    ("Icelandic", 0x040F),
    ("Japanese", 0x0411),
    ("Japanese_Bushu_Kakusu", 0x40411),
    ("Japanese_XJIS", 0x0411),
    ("Kazakh", 0x043F),
    ("Korean", 0x0412),
    ("Korean_Wansung", 0x0412),
    ("Latvian", 0x0426),
    ("Lithuanian", 0x0427),
    ("Macedonian_FYROM", 0x042F),
    ("Modern_Spanish", 0x0C0A),
    ("Mohawk", 0x047C),
    ("Norwegian", 0x0414),
    ("Polish", 0x0415),
    ("Romanian", 0x0418),
    ("Serbian_Cyrillic", 0x0C1A),
    ("Serbian_Latin", 0x081A),
    ("Slovak", 0x041B),
    ("Slovenian", 0x0424),
    ("Syriac", 0x045A),
    ("Tatar", 0x0444),
    ("Thai", 0x041E),
    ("Traditional_Spanish", 0x040A),
    ("Turkish", 0x041F),
    ("Ukrainian", 0x0422),
    ("Urdu", 0x0420),
    ("Uzbek_Latin", 0x0443),
    ("Vietnamese", 0x042A),
];

/// SQL collations: name, sort id ("SQL Server Sort Order n" in
/// sys.fn_helpcollations' descriptions), LCID and flags.
const SQL_COLLATIONS: &[(&str, u8, u32, u8)] = &[
    ("SQL_Latin1_General_CP1_CS_AS", 51, 0x0409, KI_WI),
    ("SQL_Latin1_General_CP1_CI_AS", 52, 0x0409, CI | KI_WI),
    ("SQL_Latin1_General_Pref_CP1_CI_AS", 53, 0x0409, CI | KI_WI),
    ("SQL_Latin1_General_CP1_CI_AI", 54, 0x0409, CI | AI | KI_WI),
    ("SQL_Latin1_General_CP1250_CS_AS", 81, 0x0405, KI_WI),
    ("SQL_Latin1_General_CP1250_CI_AS", 82, 0x0405, CI | KI_WI),
    ("SQL_Latin1_General_CP1251_CS_AS", 105, 0x0419, KI_WI),
    ("SQL_Latin1_General_CP1251_CI_AS", 106, 0x0419, CI | KI_WI),
    ("SQL_Latin1_General_CP1253_CS_AS", 113, 0x0408, KI_WI),
    ("SQL_Latin1_General_CP1253_CI_AS", 114, 0x0408, CI | KI_WI),
    ("SQL_Latin1_General_CP1254_CS_AS", 129, 0x041F, KI_WI),
    ("SQL_Latin1_General_CP1254_CI_AS", 130, 0x041F, CI | KI_WI),
    ("SQL_Latin1_General_CP1255_CS_AS", 137, 0x040D, KI_WI),
    ("SQL_Latin1_General_CP1255_CI_AS", 138, 0x040D, CI | KI_WI),
    ("SQL_Latin1_General_CP1256_CS_AS", 145, 0x0401, KI_WI),
    ("SQL_Latin1_General_CP1256_CI_AS", 146, 0x0401, CI | KI_WI),
    ("SQL_Latin1_General_CP1257_CS_AS", 153, 0x0425, KI_WI),
    ("SQL_Latin1_General_CP1257_CI_AS", 154, 0x0425, CI | KI_WI),
];

const CI: u8 = Collation::IGNORE_CASE;
const AI: u8 = Collation::IGNORE_ACCENT;
const KI_WI: u8 = Collation::IGNORE_KANA | Collation::IGNORE_WIDTH;

const VERSIONS: &[(&str, u8)] = &[("90", 1), ("100", 2), ("140", 3), ("160", 4)];

/// Error 448: a COLLATE clause naming no collation.
pub fn invalid(name: &str) -> SqlError {
    SqlError::new(448, 1, 16, format!("Invalid collation '{name}'."))
}

/// A collation by name (case-insensitive), or None when there is no such
/// collation.
pub fn parse(name: &str) -> Option<Collation> {
    let name = name.trim().trim_matches(|c| c == '[' || c == ']');
    if let Some((_, sort_id, lcid, flags)) = SQL_COLLATIONS
        .iter()
        .find(|(n, ..)| n.eq_ignore_ascii_case(name))
    {
        return Some(Collation {
            lcid: *lcid,
            flags: *flags,
            version: 0,
            sort_id: *sort_id,
            supplementary: false,
        });
    }
    // The longest designator the name starts with, then its options.
    let (designator, lcid) = DESIGNATORS
        .iter()
        .filter(|(d, _)| {
            name.len() > d.len()
                && name[..d.len()].eq_ignore_ascii_case(d)
                && name.as_bytes()[d.len()] == b'_'
        })
        .max_by_key(|(d, _)| d.len())?;
    let mut parts: Vec<String> = name[designator.len() + 1..]
        .split('_')
        .map(str::to_ascii_uppercase)
        .collect();
    let mut version = 0;
    if let Some((_, v)) = parts
        .first()
        .and_then(|p| VERSIONS.iter().find(|(n, _)| *n == p))
    {
        version = *v;
        parts.remove(0);
    }
    let mut c = Collation {
        lcid: *lcid,
        flags: 0,
        version,
        sort_id: 0,
        supplementary: false,
    };
    let mut it = parts.iter().map(String::as_str).peekable();
    match it.next()? {
        "BIN" => c.flags |= Collation::BINARY,
        "BIN2" => c.flags |= Collation::BINARY2,
        case => {
            match case {
                "CI" => c.flags |= CI,
                "CS" => {}
                _ => return None,
            }
            match it.next()? {
                "AI" => c.flags |= AI,
                "AS" => {}
                _ => return None,
            }
            c.flags |= KI_WI;
            if it.peek() == Some(&"KS") {
                it.next();
                c.flags &= !Collation::IGNORE_KANA;
            }
            if it.peek() == Some(&"WS") {
                it.next();
                c.flags &= !Collation::IGNORE_WIDTH;
            }
            if it.peek() == Some(&"SC") {
                it.next();
                c.supplementary = true;
            }
            if it.peek() == Some(&"VSS") {
                it.next();
            }
        }
    }
    if it.peek() == Some(&"UTF8") {
        it.next();
        c.flags |= Collation::UTF8;
    }
    if it.next().is_some() {
        return None;
    }
    Some(c)
}

/// The collation's name as sys.columns and DATABASEPROPERTYEX show it.
pub fn name(c: &Collation) -> String {
    if c.sort_id != 0 {
        if let Some((n, ..)) = SQL_COLLATIONS.iter().find(|(_, id, ..)| *id == c.sort_id) {
            return n.to_string();
        }
    }
    let designator = DESIGNATORS
        .iter()
        .find(|(_, l)| *l == c.lcid)
        .map(|(d, _)| *d)
        .unwrap_or("Latin1_General");
    let mut s = designator.to_string();
    if let Some((v, _)) = VERSIONS.iter().find(|(_, code)| *code == c.version) {
        s.push('_');
        s.push_str(v);
    }
    if c.flags & Collation::BINARY2 != 0 {
        s.push_str("_BIN2");
    } else if c.flags & Collation::BINARY != 0 {
        s.push_str("_BIN");
    } else {
        s.push_str(if c.case_sensitive() { "_CS" } else { "_CI" });
        s.push_str(if c.accent_sensitive() { "_AS" } else { "_AI" });
        if c.flags & Collation::IGNORE_KANA == 0 {
            s.push_str("_KS");
        }
        if c.flags & Collation::IGNORE_WIDTH == 0 {
            s.push_str("_WS");
        }
        if c.supplementary {
            s.push_str("_SC");
        }
    }
    if c.utf8() {
        s.push_str("_UTF8");
    }
    s
}

/// The SQLite collation that compares as `c` does.
pub fn sqlite_name(c: &Collation) -> &'static str {
    if c.binary() {
        "TSQL_BIN"
    } else {
        match (c.case_sensitive(), c.accent_sensitive()) {
            (false, true) => "TSQL",
            (true, true) => "TSQL_CS",
            (false, false) => "TSQL_CI_AI",
            (true, false) => "TSQL_CS_AI",
        }
    }
}

/// `sql COLLATE <the SQLite collation of c>`.
pub fn collate(sql: &str, c: &Collation) -> String {
    format!("{sql} COLLATE {}", sqlite_name(c))
}

/// The letter an accented Latin letter carries (accent-insensitive
/// collations compare `é` and `e` equal).
pub(crate) fn base_letter(c: char) -> char {
    const FROM: &str = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿ\
        ĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľĿŀŁł\
        ŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž";
    const TO: &str = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyy\
        AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiJjKkLlLlLlLlLl\
        NnNnNnOoOoOoRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZz";
    if c.is_ascii() {
        return c;
    }
    FROM.chars()
        .position(|f| f == c)
        .and_then(|i| TO.chars().nth(i))
        .unwrap_or(c)
}

/// Comparison under a collation's sensitivities. Trailing blanks never
/// count (the ANSI padding rule SQL Server applies to every collation).
pub fn compare(
    a: &str,
    b: &str,
    case_sensitive: bool,
    accent_sensitive: bool,
    binary: bool,
) -> Ordering {
    let a = a.trim_end_matches(' ');
    let b = b.trim_end_matches(' ');
    if binary {
        return a.chars().cmp(b.chars());
    }
    let key = |s: &str| -> Vec<char> {
        s.chars()
            .map(|c| if accent_sensitive { c } else { base_letter(c) })
            .flat_map(char::to_lowercase)
            .collect()
    };
    match key(a).cmp(&key(b)) {
        Ordering::Equal if case_sensitive => {
            // Same letters: lower case sorts before upper case, as the
            // dictionary order of the _CS collations has it.
            for (x, y) in a.chars().zip(b.chars()) {
                if x != y {
                    return match (x.is_lowercase(), y.is_lowercase()) {
                        (true, false) => Ordering::Less,
                        (false, true) => Ordering::Greater,
                        _ => x.cmp(&y),
                    };
                }
            }
            a.chars().count().cmp(&b.chars().count())
        }
        o => o,
    }
}

/// Registers the SQLite collations [`sqlite_name`] names.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_collation("TSQL_CS", |a, b| compare(a, b, true, true, false))?;
    conn.create_collation("TSQL_CI_AI", |a, b| compare(a, b, false, false, false))?;
    conn.create_collation("TSQL_CS_AI", |a, b| compare(a, b, true, false, false))?;
    conn.create_collation("TSQL_BIN", |a, b| compare(a, b, true, true, true))?;
    Ok(())
}

/// The collation label of a string expression (collation precedence page):
/// a literal, variable or most function results take the database's
/// collation (coercible-default); a column reference its column's
/// (implicit); a COLLATE clause its own (explicit); two implicit
/// collations that differ leave no collation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Label {
    #[default]
    Default,
    Implicit(Collation),
    Explicit(Collation),
    /// No-collation: the two implicit collations that met (left, right).
    Conflict(Collation, Collation),
}

/// Two operands' labels combined by the precedence table; `Err` holds two
/// explicit collations that differ (left, right).
pub fn combine(a: Label, b: Label) -> Result<Label, (Collation, Collation)> {
    use Label::*;
    Ok(match (a, b) {
        (Explicit(x), Explicit(y)) if x != y => return Err((x, y)),
        (Explicit(x), _) | (_, Explicit(x)) => Explicit(x),
        (Implicit(x), Implicit(y)) if x != y => Conflict(x, y),
        (Conflict(x, y), _) | (_, Conflict(x, y)) => Conflict(x, y),
        (Implicit(x), _) | (_, Implicit(x)) => Implicit(x),
        (Default, Default) => Default,
    })
}

/// Error 468 for an operator whose operands' collations cannot be
/// resolved; SQL Server names the right operand's collation first.
pub fn conflict(left: &Collation, right: &Collation, operation: &str) -> SqlError {
    SqlError::new(
        468,
        9,
        16,
        format!(
            "Cannot resolve the collation conflict between \"{}\" and \"{}\" in the {operation} operation.",
            name(right),
            name(left)
        ),
    )
}

/// The collation a collation-sensitive operator (comparison, LIKE, IN,
/// BETWEEN, MIN/MAX, UNION) uses for two operands: the explicit one, else
/// the implicit one, else `default` (the database's); 468 when none can be
/// chosen.
pub fn for_operation(
    a: Label,
    b: Label,
    default: Collation,
    operation: &str,
) -> Result<Collation, SqlError> {
    match combine(a, b) {
        Ok(Label::Explicit(c) | Label::Implicit(c)) => Ok(c),
        Ok(Label::Default) => Ok(default),
        Ok(Label::Conflict(x, y)) | Err((x, y)) => Err(conflict(&x, &y, operation)),
    }
}

/// The collation one operand is compared, sorted or grouped under.
pub fn of(label: Label, default: Collation) -> Result<Collation, (Collation, Collation)> {
    match label {
        Label::Explicit(c) | Label::Implicit(c) => Ok(c),
        Label::Default => Ok(default),
        Label::Conflict(x, y) => Err((x, y)),
    }
}

/// The name of a comparison operator in error 468.
pub fn operation_name(sym: &str) -> &'static str {
    match sym {
        "=" => "equal to",
        "<>" | "!=" => "not equal to",
        "<" => "less than",
        "<=" => "less than or equal to",
        ">" => "greater than",
        ">=" => "greater than or equal to",
        _ => "equal to",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_canonical_case() {
        for n in [
            "SQL_Latin1_General_CP1_CI_AS",
            "SQL_Latin1_General_CP1_CS_AS",
            "Latin1_General_CI_AS",
            "Latin1_General_CS_AS",
            "Latin1_General_100_CI_AS_SC_UTF8",
            "Latin1_General_BIN2",
            "Cyrillic_General_CI_AS",
            "Modern_Spanish_CI_AI",
            "Japanese_CS_AS_KS_WS",
        ] {
            let c = parse(n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(name(&c), n);
        }
        assert_eq!(
            name(&parse("latin1_general_cs_as").unwrap()),
            "Latin1_General_CS_AS"
        );
        assert_eq!(
            parse("SQL_Latin1_General_CP1_CI_AS"),
            Some(Collation::SERVER)
        );
        assert!(parse("Klingon_CI_AS").is_none());
        assert!(parse("Latin1_General_XX").is_none());
        // MS-TDS COLLATION: Cyrillic_General_CI_AS is LCID 0x419, no sort id.
        assert_eq!(
            parse("Cyrillic_General_CI_AS").unwrap().to_tds(),
            [0x19, 0x04, 0xD0, 0x00, 0]
        );
    }

    #[test]
    fn comparisons_follow_sensitivity() {
        assert_eq!(compare("abc", "ABC  ", false, true, false), Ordering::Equal);
        assert_ne!(compare("abc", "ABC", true, true, false), Ordering::Equal);
        assert_eq!(compare("a", "A", true, true, false), Ordering::Less);
        assert_eq!(compare("A", "b", true, true, false), Ordering::Less);
        assert_eq!(
            compare("café", "CAFE", false, false, false),
            Ordering::Equal
        );
        assert_ne!(compare("café", "cafe", false, true, false), Ordering::Equal);
        assert_eq!(compare("B", "a", true, true, true), Ordering::Less);
    }

    #[test]
    fn precedence_table() {
        let cs = parse("Latin1_General_CS_AS").unwrap();
        let ci = Collation::SERVER;
        assert_eq!(
            combine(Label::Implicit(cs), Label::Default),
            Ok(Label::Implicit(cs))
        );
        assert_eq!(
            combine(Label::Implicit(cs), Label::Implicit(ci)),
            Ok(Label::Conflict(cs, ci))
        );
        assert_eq!(
            combine(Label::Implicit(cs), Label::Explicit(ci)),
            Ok(Label::Explicit(ci))
        );
        assert_eq!(
            combine(Label::Conflict(cs, ci), Label::Explicit(cs)),
            Ok(Label::Explicit(cs))
        );
        assert_eq!(
            combine(Label::Explicit(cs), Label::Explicit(ci)),
            Err((cs, ci))
        );
        let e =
            for_operation(Label::Implicit(ci), Label::Implicit(cs), ci, "equal to").unwrap_err();
        assert_eq!(e.number, 468);
        assert_eq!(
            e.message,
            "Cannot resolve the collation conflict between \"Latin1_General_CS_AS\" and \"SQL_Latin1_General_CP1_CI_AS\" in the equal to operation."
        );
    }
}
