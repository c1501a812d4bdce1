//! SQL Server errors, with the numbers, states, severities and message texts
//! SQL Server itself uses, so clients' error handling is exercised for real.

/// How much of a batch an error stops: SQL Server aborts the whole batch on
/// compile-time errors and deadlocks, but only the statement on most
/// constraint violations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    Statement,
    Batch,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Msg {number}, Level {class}, State {state}: {message}")]
pub struct SqlError {
    pub number: i32,
    pub state: u8,
    pub class: u8,
    pub message: String,
    pub abort: Abort,
}

/// Prefix a custom SQLite function puts in its error text so the engine can
/// recover the SQL Server error after it crossed SQLite's C boundary.
pub(crate) const FN_ERROR_TAG: &str = "__tsql_error__";

impl SqlError {
    pub fn new(number: i32, state: u8, class: u8, message: impl Into<String>) -> Self {
        SqlError {
            number,
            state,
            class,
            message: message.into(),
            abort: Abort::Statement,
        }
    }

    pub fn batch(mut self) -> Self {
        self.abort = Abort::Batch;
        self
    }

    pub fn syntax_near(token: &str) -> Self {
        let keywords = [
            "FROM", "WHERE", "SELECT", "SET", "VALUES", "INTO", "TABLE", "ON", "JOIN", "AS", "END",
            "ORDER", "GROUP", "BY", "AND", "OR", "NOT", "NULL", "IS", "IN",
        ];
        if keywords.iter().any(|k| k.eq_ignore_ascii_case(token)) {
            SqlError::new(
                156,
                1,
                15,
                format!(
                    "Incorrect syntax near the keyword '{}'.",
                    token.to_ascii_uppercase()
                ),
            )
            .batch()
        } else {
            SqlError::new(102, 1, 15, format!("Incorrect syntax near '{token}'.")).batch()
        }
    }

    pub fn invalid_object(name: &str) -> Self {
        SqlError::new(208, 1, 16, format!("Invalid object name '{name}'.")).batch()
    }

    pub fn invalid_column(name: &str) -> Self {
        SqlError::new(207, 1, 16, format!("Invalid column name '{name}'.")).batch()
    }

    /// 8672: a MERGE would update or delete one target row for several
    /// source rows. "If UPDATE is specified in the <merge_matched> clause,
    /// and more than one row of <table_source> matches a row in target_table
    /// based on <merge_search_condition>, SQL Server returns an error. The
    /// MERGE statement can't update the same row more than once, or update
    /// and delete the same row."
    /// https://learn.microsoft.com/en-us/sql/t-sql/statements/merge-transact-sql
    pub fn merge_twice() -> Self {
        SqlError::new(
            8672,
            1,
            16,
            "The MERGE statement attempted to UPDATE or DELETE the same row more than once. \
             This happens when a target row matches more than one source row. A MERGE statement \
             cannot UPDATE/DELETE the same row of the target table multiple times. Refine the ON \
             clause to ensure a target row matches at most one source row, or use the GROUP BY \
             clause to group the source rows.",
        )
    }

    pub fn duplicate_key(constraint: &str, object: &str, key: &str) -> Self {
        SqlError::new(
            2627,
            1,
            14,
            format!(
                "Violation of PRIMARY KEY constraint '{constraint}'. Cannot insert duplicate key in object '{object}'. The duplicate key value is ({key})."
            ),
        )
    }

    pub fn null_not_allowed(column: &str, table: &str, op: &str) -> Self {
        SqlError::new(
            515,
            2,
            16,
            format!(
                "Cannot insert the value NULL into column '{column}', table '{table}'; column does not allow nulls. {op} fails."
            ),
        )
    }

    pub fn truncated(table: &str, column: &str, value: &str) -> Self {
        SqlError::new(
            2628,
            1,
            16,
            format!(
                "String or binary data would be truncated in table '{table}', column '{column}'. Truncated value: '{value}'."
            ),
        )
    }

    pub fn conversion(from_type: &str, value: &str, to_type: &str) -> Self {
        SqlError::new(
            245,
            1,
            16,
            format!(
                "Conversion failed when converting the {from_type} value '{value}' to data type {to_type}."
            ),
        )
    }

    pub fn datetime_conversion() -> Self {
        SqlError::new(
            241,
            1,
            16,
            "Conversion failed when converting date and/or time from character string.",
        )
    }

    pub fn overflow(to_type: &str) -> Self {
        SqlError::new(
            8115,
            2,
            16,
            format!("Arithmetic overflow error converting expression to data type {to_type}."),
        )
    }

    pub fn lock_timeout() -> Self {
        SqlError::new(1222, 56, 16, "Lock request time out period exceeded.")
    }

    pub fn deadlock(spid: u16) -> Self {
        SqlError::new(
            1205,
            51,
            13,
            format!(
                "Transaction (Process ID {spid}) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction."
            ),
        )
        .batch()
    }

    pub fn login_failed(user: &str) -> Self {
        SqlError::new(18456, 1, 14, format!("Login failed for user '{user}'."))
    }

    pub fn cannot_open_database(db: &str) -> Self {
        SqlError::new(
            4060,
            1,
            11,
            format!("Cannot open database \"{db}\" requested by the login. The login failed."),
        )
    }

    pub fn no_such_database(db: &str) -> Self {
        SqlError::new(
            911,
            1,
            16,
            format!(
                "Database '{db}' does not exist. Make sure that the name is entered correctly."
            ),
        )
        .batch()
    }

    pub fn object_exists(name: &str) -> Self {
        SqlError::new(
            2714,
            6,
            16,
            format!("There is already an object named '{name}' in the database."),
        )
    }

    pub fn unsupported(what: &str) -> Self {
        SqlError::new(
            40517,
            1,
            16,
            format!("Keyword or statement option '{what}' is not supported in this version of SQL Server."),
        )
        .batch()
    }

    pub fn divide_by_zero() -> Self {
        SqlError::new(8134, 1, 16, "Divide by zero error encountered.")
    }

    /// Encodes this error for transport through a SQLite user function.
    pub(crate) fn to_fn_error(&self) -> rusqlite::Error {
        rusqlite::Error::UserFunctionError(self.fn_error_text().into())
    }

    /// The text [`SqlError::to_fn_error`] carries, for callbacks that
    /// return their own error type (rusqlite wraps it the same way).
    pub(crate) fn fn_error_text(&self) -> String {
        format!(
            "{FN_ERROR_TAG}|{}|{}|{}|{}",
            self.number, self.state, self.class, self.message
        )
    }

    /// Recovers an error raised by [`SqlError::to_fn_error`] from SQLite's message text.
    pub(crate) fn from_fn_error(text: &str) -> Option<SqlError> {
        let rest = text.split_once(FN_ERROR_TAG)?.1.strip_prefix('|')?;
        let mut parts = rest.splitn(4, '|');
        let number = parts.next()?.parse().ok()?;
        let state = parts.next()?.parse().ok()?;
        let class = parts.next()?.parse().ok()?;
        let message = parts.next()?.to_string();
        Some(SqlError::new(number, state, class, message))
    }
}
