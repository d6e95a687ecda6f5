//! The embedded SQLite database: opened in the data folder, migrated at start.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The file name of the database inside the data folder.
pub const DATABASE_FILE: &str = "intake.db";

/// Opens (creating if needed) the database in `data_dir` and applies every migration.
pub async fn open(data_dir: &Path) -> anyhow::Result<SqlitePool> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
    let path = data_dir.join(DATABASE_FILE);
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        // An accepted intake must survive a power cut, so every commit is synced.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    // The audit trail's MAC key lives outside the database; each connection
    // holds it in a TEMP table, in memory, private to it (see `audit`).
    let key = std::sync::Arc::new(crate::crypto::load_key(data_dir)?);
    let options = options.pragma("temp_store", "memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| {
            let key = key.clone();
            Box::pin(async move {
                sqlx::query("CREATE TEMP TABLE IF NOT EXISTS audit_key (key BLOB NOT NULL)")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM temp.audit_key")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("INSERT INTO temp.audit_key (key) VALUES (?)")
                    .bind(key.as_slice())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("opening the database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("applying database migrations")?;
    sqlx::query(
        "INSERT INTO installation (singleton, id, created_at)
         VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
         ON CONFLICT (singleton) DO NOTHING",
    )
    .execute(&pool)
    .await
    .context("recording the installation")?;
    Ok(pool)
}

/// The newest migration applied, if the database answers.
pub async fn schema_version(pool: &SqlitePool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
}

/// Starts a transaction that writes: `BEGIN IMMEDIATE` takes SQLite's write lock
/// at once (waiting up to the busy timeout), so a transaction that reads and then
/// writes can never fail because another connection wrote in between.
pub async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}
