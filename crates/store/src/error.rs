//! Errors of the storage layer.
//!
//! Callers care about one distinction above all: is the database *unavailable* (retry later,
//! answer 503) or did a statement fail for a reason that retrying will not fix? Every error
//! answers that through [`StoreError::is_unavailable`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A failure talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No pooled connection could be had in time, or none could be opened.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// A statement on a raw tokio-postgres connection failed.
    #[error("database statement failed: {}", chain(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The schema is older than this binary.
    #[error(
        "database schema is behind this binary ({pending} pending migration(s)): run `threesigma migrate` (or start with --migrate)"
    )]
    SchemaBehind { pending: usize },
    /// Running migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database URL is malformed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
}

impl StoreError {
    /// Whether the failure is about reaching the database (connection refused or lost, pool
    /// exhausted, server shutting down) rather than about the statement itself.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(error) => {
                matches!(
                    error,
                    DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
                        | DieselError::BrokenTransactionManager
                ) || is_connection_message(&error.to_string())
            }
            StoreError::Postgres(error) => postgres_unavailable(error),
            _ => false,
        }
    }

    /// Whether the failure is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _,
            )) => true,
            StoreError::Postgres(error) => {
                error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// Whether a tokio-postgres error means the server is unreachable or going away.
pub fn postgres_unavailable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                // A primary demoted to standby by a failover manager: reconnect (a
                // `target_session_attrs=read-write` URL then finds the new primary).
                || *code == SqlState::READ_ONLY_SQL_TRANSACTION
                || code.code().starts_with("08")
        }
        // No SQLSTATE: an I/O or protocol error on the socket.
        None => true,
    }
}

fn is_connection_message(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "connection closed",
        "Connection refused",
        "terminating connection",
        "the database system is",
        "error communicating with database",
        "broken pipe",
        "read-only transaction",
    ];
    SIGNS.iter().any(|sign| message.contains(sign))
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for StoreError {
    fn from(
        error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>,
    ) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An error with its causes (`error performing TLS handshake: invalid peer certificate:
/// UnknownIssuer`; `db error: FATAL: database "x" does not exist`): tokio-postgres's own
/// text leaves them out.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
