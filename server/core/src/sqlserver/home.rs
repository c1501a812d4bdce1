//! The database the bridge works in: the one its settings name, or else the
//! login's default database, which SQL Server reports as `DB_NAME()` on a
//! fresh connection (https://learn.microsoft.com/en-us/sql/t-sql/functions/db-name-transact-sql).
//! Names without a database (in a query, a grant or a sync target) are in
//! this database, so permission checks resolve them against it.

use std::time::Duration;

use tokio::sync::OnceCell;

use super::{classify, connect, SqlServerError};
use crate::config::SqlServerSettings;

/// Learned once, on first use.
pub struct HomeDatabase {
    settings: SqlServerSettings,
    timeout: Duration,
    name: OnceCell<String>,
}

impl HomeDatabase {
    pub fn new(settings: &SqlServerSettings, timeout: Duration) -> HomeDatabase {
        let name = OnceCell::new();
        if !settings.database.trim().is_empty() {
            let _ = name.set(settings.database.trim().to_string());
        }
        HomeDatabase {
            settings: settings.clone(),
            timeout,
            name,
        }
    }

    /// The database's name; asks SQL Server when the settings give none.
    pub async fn name(&self) -> Result<&str, SqlServerError> {
        self.name
            .get_or_try_init(|| async {
                let mut conn = connect(&self.settings, self.timeout).await?;
                let row = async {
                    conn.simple_query("SELECT DB_NAME()")
                        .await?
                        .into_row()
                        .await
                }
                .await
                .map_err(|e| classify(e, &self.settings))?;
                row.and_then(|r| r.get::<&str, _>(0).map(str::to_string))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        SqlServerError::Other("SQL Server did not name the current database".into())
                    })
            })
            .await
            .map(String::as_str)
    }
}
