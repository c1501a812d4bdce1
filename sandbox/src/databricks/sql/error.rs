//! SQL failures as Databricks reports them: an error class in brackets, a
//! message and a SQLSTATE. The Statement Execution API returns these inside
//! `status.error` (HTTP 200); Unity Catalog endpoints map the kind to a status.

/// What went wrong, coarse enough to pick an HTTP status in the REST layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    Invalid,
    /// The caller lacks a privilege (REST: 403 `PERMISSION_DENIED`).
    PermissionDenied,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub kind: ErrorKind,
    /// Spark error class (`TABLE_OR_VIEW_NOT_FOUND`), also used as the REST
    /// error code for Unity Catalog calls.
    pub class: String,
    pub message: String,
    pub sql_state: String,
}

impl SqlError {
    fn new(kind: ErrorKind, class: &str, detail: &str, sql_state: &str) -> Self {
        SqlError {
            kind,
            class: class.to_string(),
            message: format!("[{class}] {detail} SQLSTATE: {sql_state}"),
            sql_state: sql_state.to_string(),
        }
    }

    pub fn syntax(detail: &str) -> Self {
        Self::new(
            ErrorKind::Invalid,
            "PARSE_SYNTAX_ERROR",
            &format!("Syntax error: {detail}."),
            "42601",
        )
    }

    pub fn unsupported(what: &str) -> Self {
        Self::new(
            ErrorKind::Invalid,
            "UNSUPPORTED_FEATURE",
            &format!("The feature is not supported by the sandbox: {what}."),
            "0A000",
        )
    }

    pub fn table_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "TABLE_OR_VIEW_NOT_FOUND",
            &format!(
                "The table or view `{}` cannot be found. Verify the spelling and correctness of the schema and catalog.",
                name.replace('.', "`.`")
            ),
            "42P01",
        )
    }

    pub fn table_exists(name: &str) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            "TABLE_OR_VIEW_ALREADY_EXISTS",
            &format!(
                "Cannot create table or view `{}` because it already exists.",
                name.replace('.', "`.`")
            ),
            "42P07",
        )
    }

    pub fn catalog_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "NO_SUCH_CATALOG_EXCEPTION",
            &format!("The catalog '{name}' was not found. Please verify the catalog name."),
            "42704",
        )
    }

    pub fn catalog_exists(name: &str) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            "CATALOG_ALREADY_EXISTS",
            &format!("Cannot create catalog '{name}' because it already exists."),
            "42000",
        )
    }

    pub fn schema_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "SCHEMA_NOT_FOUND",
            &format!(
                "The schema `{}` cannot be found. Verify the spelling and correctness of the schema and catalog.",
                name.replace('.', "`.`")
            ),
            "42704",
        )
    }

    pub fn schema_exists(name: &str) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            "SCHEMA_ALREADY_EXISTS",
            &format!(
                "Cannot create schema `{}` because it already exists.",
                name.replace('.', "`.`")
            ),
            "42P06",
        )
    }

    pub fn schema_not_empty(name: &str) -> Self {
        Self::new(
            ErrorKind::Invalid,
            "SCHEMA_NOT_EMPTY",
            &format!("Cannot drop a schema `{name}` because it contains objects. Use DROP SCHEMA ... CASCADE to drop the schema and all its objects."),
            "2BP01",
        )
    }

    pub fn volume_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "VOLUME_NOT_FOUND",
            &format!("The volume `{}` cannot be found.", name.replace('.', "`.`")),
            "42704",
        )
    }

    pub fn volume_exists(name: &str) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            "VOLUME_ALREADY_EXISTS",
            &format!(
                "Cannot create volume `{}` because it already exists.",
                name.replace('.', "`.`")
            ),
            "42000",
        )
    }

    pub fn column_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::Invalid,
            "UNRESOLVED_COLUMN.WITHOUT_SUGGESTION",
            &format!(
                "A column, variable, or function parameter with name `{name}` cannot be resolved."
            ),
            "42703",
        )
    }

    pub fn unbound_parameter(name: &str) -> Self {
        Self::new(
            ErrorKind::Invalid,
            "UNBOUND_SQL_PARAMETER",
            &format!("Found the unbound parameter: {name}. Please, fix `args` and provide a mapping of the parameter to either a SQL literal or collection constructor functions such as `map()`, `array()`, `struct()`."),
            "42P02",
        )
    }

    pub fn invalid(class: &str, detail: &str, sql_state: &str) -> Self {
        Self::new(ErrorKind::Invalid, class, detail, sql_state)
    }

    pub fn path_not_found(path: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "PATH_NOT_FOUND",
            &format!("Path does not exist: {path}."),
            "42K03",
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Internal,
            "INTERNAL_ERROR",
            &detail.to_string(),
            "XX000",
        )
    }

    /// A missing Unity Catalog privilege, worded as a workspace reports it
    /// (`[INSUFFICIENT_PERMISSIONS] Insufficient privileges:` then `User does
    /// not have SELECT on Table 'c.s.t'.`; error condition INSUFFICIENT_PERMISSIONS,
    /// SQLSTATE 42501, https://docs.databricks.com/error-messages/error-classes.html).
    /// `detail` is the sentence REST endpoints return as their message.
    pub fn insufficient_permissions(detail: &str) -> Self {
        SqlError {
            kind: ErrorKind::PermissionDenied,
            class: "INSUFFICIENT_PERMISSIONS".into(),
            message: format!(
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\n{detail} SQLSTATE: 42501"
            ),
            sql_state: "42501".into(),
        }
    }

    /// The sentence after the error class: what a REST endpoint puts in
    /// `message` for the same failure.
    pub fn detail(&self) -> &str {
        let m = self.message.as_str();
        let m = m.strip_prefix(&format!("[{}] ", self.class)).unwrap_or(m);
        let m = m.strip_prefix("Insufficient privileges:\n").unwrap_or(m);
        m.rsplit_once(" SQLSTATE: ").map(|(d, _)| d).unwrap_or(m)
    }

    /// An error without an error class: Delta raises some argument errors as
    /// plain `IllegalArgumentException`s, whose text is the whole message.
    pub fn plain(kind: ErrorKind, message: &str, sql_state: &str) -> Self {
        SqlError {
            kind,
            class: String::new(),
            message: message.to_string(),
            sql_state: sql_state.to_string(),
        }
    }

    /// A failure injected by a test through the fault API.
    pub fn injected(statement: &str) -> Self {
        Self::new(
            ErrorKind::Internal,
            "SANDBOX_INJECTED_FAILURE",
            &format!("Statement failed by fault injection: {statement}"),
            "XX000",
        )
    }
}

/// SQLite's messages turned into Spark's error classes.
pub fn map_sqlite_error(e: rusqlite::Error) -> SqlError {
    if let rusqlite::Error::UserFunctionError(inner) = &e {
        if let Some(s) = inner.downcast_ref::<super::types::StoreError>() {
            return SqlError::invalid(
                match s {
                    super::types::StoreError::Malformed { .. } => "CAST_INVALID_INPUT",
                    super::types::StoreError::OutOfRange { .. } => "NUMERIC_VALUE_OUT_OF_RANGE",
                    super::types::StoreError::Mismatch { .. } => "DATATYPE_MISMATCH",
                },
                &s.to_string()
                    .split_once("] ")
                    .map(|(_, r)| {
                        r.rsplit_once(" SQLSTATE")
                            .map(|x| x.0)
                            .unwrap_or(r)
                            .to_string()
                    })
                    .unwrap_or_default(),
                s.sql_state(),
            );
        }
    }
    let msg = e.to_string();
    // A storage error raised in a function that SQLite reported as its
    // own failure (prepared statements with bound values): the text is
    // already `[CLASS] ... SQLSTATE: xxxxx`.
    if let (Some(rest), Some((_, state))) = (msg.strip_prefix('['), msg.rsplit_once(" SQLSTATE: "))
    {
        if let Some((class, _)) = rest.split_once("] ") {
            if !class.contains(' ') && state.len() == 5 {
                return SqlError {
                    kind: ErrorKind::Invalid,
                    class: class.to_string(),
                    message: msg.clone(),
                    sql_state: state.to_string(),
                };
            }
        }
    }
    if let Some(c) = msg.strip_prefix("no such column: ") {
        return SqlError::column_not_found(c);
    }
    if let Some(t) = msg.strip_prefix("no such table: ") {
        return SqlError::table_not_found(t);
    }
    if let Some(f) = msg.strip_prefix("no such function: ") {
        return SqlError::invalid(
            "UNRESOLVED_ROUTINE",
            &format!(
                "Cannot resolve routine `{}` on search path.",
                f.to_lowercase()
            ),
            "42883",
        );
    }
    if let Some(c) = msg.strip_prefix("NOT NULL constraint failed: ") {
        let col = c.rsplit('.').next().unwrap_or(c);
        return SqlError::invalid(
            "DELTA_NOT_NULL_CONSTRAINT_VIOLATED",
            &format!("NOT NULL constraint violated for column: {col}."),
            "23502",
        );
    }
    if msg.contains("values for") && msg.contains("columns") {
        return SqlError::invalid(
            "INSERT_COLUMN_ARITY_MISMATCH",
            &format!("Cannot write to the table: {msg}."),
            "21S01",
        );
    }
    if msg.contains("syntax error") || msg.contains("ambiguous") {
        return SqlError::syntax(&msg);
    }
    SqlError::internal(msg)
}
