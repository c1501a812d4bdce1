//! The SQL Server (TDS) sandbox server.
