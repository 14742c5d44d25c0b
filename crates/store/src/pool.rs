//! The shared connection pool: deadpool managing diesel-async connections, with every
//! timeout explicit so a dead database turns into a quick, typed error instead of a hang.

use std::str::FromStr;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use futures_util::FutureExt;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{StoreError, StoreResult};
use crate::tls::{self, SslMode};

/// A tokio-postgres connection over [`ConnectionConfig`]'s TLS (or plain) stream.
type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// The pool every service shares for its ordinary queries.
pub type DbPool = deadpool::managed::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
/// A connection checked out of [`DbPool`].
pub type PooledConnection =
    deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// How connections are opened and how long callers wait for them.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Longest wait for a free connection before giving up (then: 503).
    pub acquire_timeout: Duration,
    /// Longest wait for PostgreSQL to accept a new connection.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` for every statement on pooled connections.
    pub statement_timeout: Duration,
    /// Shown in `pg_stat_activity.application_name`.
    pub application_name: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 8,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            application_name: "threesigma".to_owned(),
        }
    }
}

/// Everything needed to open a connection: tokio-postgres's configuration and the TLS
/// connector for the URL's `sslmode` (see [`crate::tls`]).
#[derive(Clone)]
pub struct ConnectionConfig {
    postgres: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    ssl_mode: SslMode,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's Debug leaves the password out.
        f.debug_struct("ConnectionConfig")
            .field("postgres", &self.postgres)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

impl ConnectionConfig {
    /// Parses a database URL (or libpq key/value string) with its TLS parameters, and
    /// nothing else applied: for one-off connections such as migrations, which must not
    /// inherit a statement timeout.
    pub fn parse(url: &str) -> StoreResult<ConnectionConfig> {
        let split = tls::split_url(url)?;
        let mut postgres = tokio_postgres::Config::from_str(&split.rest)
            .map_err(|error| StoreError::InvalidUrl(crate::error::chain(&error)))?;
        tls::check_nothing_hidden(&postgres)?;
        tls::apply(&mut postgres, &split.tls);
        Ok(ConnectionConfig {
            postgres,
            tls: tls::connector(&split.tls)?,
            ssl_mode: split.tls.effective_mode(),
        })
    }

    /// The tokio-postgres side (host, user, options…).
    pub fn postgres(&self) -> &tokio_postgres::Config {
        &self.postgres
    }

    /// The TLS mode in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// How long opening a connection may take in all (TCP, TLS, start-up, authentication):
    /// the URL's `connect_timeout`, else 10 s. tokio-postgres bounds only the TCP connect,
    /// and a server that accepts and then says nothing would hang the caller forever.
    fn establish_timeout(&self) -> Duration {
        self.postgres
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10))
    }

    async fn establish(&self) -> Result<(tokio_postgres::Client, Connection), String> {
        let timeout = self.establish_timeout();
        match tokio::time::timeout(timeout, self.postgres.connect(self.tls.clone())).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(error)) => Err(crate::error::chain(&error)),
            Err(_) => Err(format!(
                "no answer from the server within {timeout:?} (connect_timeout)"
            )),
        }
    }

    /// Opens one raw tokio-postgres connection and drives it on the current runtime.
    pub async fn connect_raw(&self) -> StoreResult<tokio_postgres::Client> {
        let (client, connection) = self.establish().await.map_err(StoreError::Unavailable)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended.");
            }
        });
        Ok(client)
    }

    /// Opens one diesel-async connection.
    pub async fn connect(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let (client, connection) = self
            .establish()
            .await
            .map_err(ConnectionError::BadConnection)?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
}

/// Parses a database URL (or key=value string) and applies the connection settings.
pub fn connection_config(url: &str, settings: &PoolSettings) -> StoreResult<ConnectionConfig> {
    let mut connection = ConnectionConfig::parse(url)?;
    let config = &mut connection.postgres;
    config.connect_timeout(settings.connect_timeout);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name(&settings.application_name);
    }
    let timeout_ms = settings.statement_timeout.as_millis();
    if timeout_ms > 0 {
        let options = format!(
            "{} -c statement_timeout={timeout_ms}",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim());
    }
    Ok(connection)
}

/// One connection to `url` as it is (TLS per its `sslmode`), for one-off work.
pub async fn connect(url: &str) -> StoreResult<AsyncPgConnection> {
    ConnectionConfig::parse(url)?
        .connect()
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))
}

/// Fails on a server in recovery (a standby): the recycle check of pools that must write.
const STILL_PRIMARY: &str =
    "DO $$BEGIN IF pg_is_in_recovery() THEN RAISE EXCEPTION 'now a standby'; END IF; END$$";

/// Builds the pool. No connection is opened here: the first query opens one, so a service
/// can start (and report not-ready) while the database is still coming up.
pub fn build_pool(url: &str, settings: &PoolSettings) -> StoreResult<DbPool> {
    let config = connection_config(url, settings)?;
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // Check a connection with a round trip before handing it out: after a database restart,
    // stale connections are replaced instead of failing the caller's first query. A URL
    // that asks for the primary (`target_session_attrs=read-write`) also gets its idle
    // connections to a primary since demoted to standby (a failover manager's switchover)
    // replaced, instead of failing every write with "read-only transaction".
    manager_config.recycling_method = if config.postgres.get_target_session_attrs()
        == tokio_postgres::config::TargetSessionAttrs::ReadWrite
    {
        RecyclingMethod::CustomQuery(STILL_PRIMARY.into())
    } else {
        RecyclingMethod::Verified
    };
    manager_config.custom_setup = Box::new(move |_url| {
        let config = config.clone();
        async move { config.connect().await }.boxed()
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    DbPool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Unavailable(error.to_string()))
}

/// Checks out a connection, mapping every pool failure to [`StoreError::Unavailable`].
pub async fn connection(pool: &DbPool) -> StoreResult<PooledConnection> {
    Ok(pool.get().await?)
}

/// A cheap round trip: is the database reachable right now?
pub async fn ping(pool: &DbPool) -> StoreResult<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = connection(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[prefix_end..].find('/') {
        Some(slash) => &base[..prefix_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
