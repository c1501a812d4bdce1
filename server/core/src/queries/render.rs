//! `{name}` placeholders filled from the trusted parameter files.
//!
//! Only `{identifier}` is a placeholder, so other braces in SQL (JSON text,
//! ODBC escapes) are left alone; `{{` and `}}` stand for literal braces.

use std::path::PathBuf;

use crate::config::Params;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}", missing_message(.file, .missing, .params_files))]
    Missing {
        file: PathBuf,
        /// (line, key) of each placeholder with no value.
        missing: Vec<(usize, String)>,
        params_files: Vec<PathBuf>,
    },
}

fn missing_message(
    file: &std::path::Path,
    missing: &[(usize, String)],
    files: &[PathBuf],
) -> String {
    let from = if files.is_empty() {
        "no parameter files".to_string()
    } else {
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    missing
        .iter()
        .map(|(line, key)| {
            format!(
                "{}:{line}: parameter '{key}' is not set in {from}",
                file.display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Placeholder { key: &'a str, line: usize },
}

fn pieces(sql: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push(Piece::Text(&sql[start..i]));
                out.push(Piece::Brace('{'));
                i += 2;
                start = i;
                continue;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push(Piece::Text(&sql[start..i]));
                out.push(Piece::Brace('}'));
                i += 2;
                start = i;
                continue;
            }
            b'{' => {
                let rest = &sql[i + 1..];
                let len = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let is_ident = len > 0
                    && !rest.as_bytes()[0].is_ascii_digit()
                    && rest.as_bytes().get(len) == Some(&b'}');
                if is_ident {
                    out.push(Piece::Text(&sql[start..i]));
                    out.push(Piece::Placeholder {
                        key: &rest[..len],
                        line,
                    });
                    i += len + 2;
                    start = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push(Piece::Text(&sql[start..]));
    out
}

/// The placeholders of a query, with their line numbers.
pub fn placeholders(sql: &str) -> Vec<(usize, String)> {
    pieces(sql)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder { key, line } => Some((line, key.to_string())),
            _ => None,
        })
        .collect()
}

/// Fills every placeholder; a missing parameter is an error naming the
/// query file, the line and the key (all of them, not just the first).
pub fn render(sql: &str, file: &std::path::Path, params: &Params) -> Result<String, RenderError> {
    let mut out = String::with_capacity(sql.len());
    let mut missing = Vec::new();
    for p in pieces(sql) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Brace(c) => out.push(c),
            Piece::Placeholder { key, line } => match params.get(key) {
                Some(v) => out.push_str(v),
                None => missing.push((line, key.to_string())),
            },
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(RenderError::Missing {
            file: file.to_path_buf(),
            missing,
            params_files: params.files.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        let mut p = Params::default();
        p.set("database", "KWP_Colombia", "config/Colombia.yaml");
        p.set("country_code", "CO", "config/Colombia.yaml");
        p.files.push("config/common_params.yaml".into());
        p.files.push("config/Colombia.yaml".into());
        p
    }

    #[test]
    fn fills_placeholders_and_keeps_other_braces() {
        let sql = "SELECT '{\"a\": 1}', {fn NOW()}, '{{x}}'\nFROM {database}.dbo.t WHERE pais = '{country_code}'";
        let out = render(sql, "q.sql".as_ref(), &params()).unwrap();
        assert_eq!(
            out,
            "SELECT '{\"a\": 1}', {fn NOW()}, '{x}'\nFROM KWP_Colombia.dbo.t WHERE pais = '{country_code}'"
                .replace("{country_code}", "CO")
        );
        assert_eq!(
            placeholders(sql),
            vec![(2, "database".to_string()), (2, "country_code".to_string())]
        );
    }

    #[test]
    fn missing_parameters_name_file_line_and_key() {
        let sql = "SELECT {factor}\nFROM {database}.dbo.t\nWHERE fecha >= '{start_date}'";
        let err = render(sql, "queries/ventas.sql".as_ref(), &params())
            .unwrap_err()
            .to_string();
        assert!(err.contains("queries/ventas.sql:1: parameter 'factor' is not set in config/common_params.yaml or config/Colombia.yaml"), "{err}");
        assert!(
            err.contains("queries/ventas.sql:3: parameter 'start_date'"),
            "{err}"
        );
    }
}
