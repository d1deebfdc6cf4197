//! The default key-value backend, as Spin's `spin` store type (`crates/key-value-spin`): one SQLite
//! database holding every store in table `spin_key_value (store, key, value)`, one connection
//! behind a mutex, created on the first open that needs it (a failed creation is retried by the
//! next open). Every call is its own statement (SQLite's implicit transaction), so a read sees the
//! last completed write. Like Spin's, every open and every call runs in a blocking section
//! ([`blocking`]: `block_in_place` on the host's multi-threaded runtime): a slow disk write must
//! not stall other requests' instances, and the hand-off of the worker's other tasks that this
//! costs is part of what a key-value call costs a request in Spin. Without a path the database
//! lives in memory, as in Spin.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::spin::blocking;

/// One SQLite database (a file, or in memory) shared by every store label mapped to it.
#[derive(Clone)]
pub struct SqliteDb {
    path: Option<Arc<Path>>,
    conn: Arc<OnceLock<Arc<Mutex<Connection>>>>,
}

impl SqliteDb {
    /// The database at `path` (created when missing), or an in-memory one; nothing is opened
    /// before the first [`SqliteDb::connect`] or call.
    pub fn new(path: Option<PathBuf>) -> SqliteDb {
        SqliteDb {
            path: path.map(Arc::from),
            conn: Arc::default(),
        }
    }

    /// What Spin's store manager does on every `open` of a store: in a blocking section, the
    /// connection, created if this is the first open (or every earlier creation failed).
    pub async fn connect(&self) -> Result<()> {
        let db = self.clone();
        blocking(move || db.connection().map(drop)).await?
    }

    /// The connection, created on first use. Two first uses at once may both create one; the
    /// first stored wins, as in Spin.
    fn connection(&self) -> Result<&Arc<Mutex<Connection>>> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn);
        }
        let new = Arc::new(Mutex::new(create(self.path.as_deref())?));
        Ok(self.conn.get_or_init(|| new))
    }

    /// Runs `f` with the connection in a blocking section.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        blocking(move || {
            let conn = db.connection()?.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn).map_err(Into::into)
        })
        .await?
    }

    pub async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let (store, key) = (store.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row([&store, &key], |row| row.get(0))
                .optional()
        })
        .await
    }

    pub async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<()> {
        let (store, key) = (store.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(store, key) DO UPDATE SET value = ?3",
            )?
            .execute(rusqlite::params![store, key, value])
            .map(drop)
        })
        .await
    }

    pub async fn delete(&self, store: &str, key: &str) -> Result<()> {
        let (store, key) = (store.to_string(), key.to_string());
        self.with(move |c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute([&store, &key])
                .map(drop)
        })
        .await
    }

    pub async fn keys(&self, store: &str) -> Result<Vec<String>> {
        let store = store.to_string();
        self.with(move |c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                .query_map([&store], |row| row.get(0))?
                .collect()
        })
        .await
    }
}

/// Opens (creating when missing) the database at `path`, or an in-memory one, with its table.
fn create(path: Option<&Path>) -> Result<Connection> {
    let conn = match path {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            Connection::open(path)
                .with_context(|| format!("cannot open SQLite database {}", path.display()))?
        }
        None => Connection::open_in_memory().context("cannot open an in-memory database")?,
    };
    // Several hosts (or a restarted one whose old connection is still closing) may share a
    // file: wait for the other writer instead of failing at once.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL,
            key   TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (store, key)
        )",
        [],
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_persist_across_a_reopen_and_stores_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        {
            let db = SqliteDb::new(Some(path.clone()));
            db.set("default", "a", b"1".to_vec()).await.unwrap();
            db.set("default", "b", vec![0, 255, 7]).await.unwrap();
            db.set("default", "a", b"2".to_vec()).await.unwrap();
            db.set("default", "gone", b"x".to_vec()).await.unwrap();
            db.delete("default", "gone").await.unwrap();
            db.set("other", "a", b"o".to_vec()).await.unwrap();
        }
        let db = SqliteDb::new(Some(path.clone()));
        assert_eq!(db.get("default", "a").await.unwrap().unwrap(), b"2");
        assert_eq!(
            db.get("default", "b").await.unwrap().unwrap(),
            vec![0, 255, 7]
        );
        assert_eq!(db.get("default", "gone").await.unwrap(), None);
        assert_eq!(db.keys("default").await.unwrap(), vec!["a", "b"]);
        assert_eq!(db.keys("other").await.unwrap(), vec!["a"]);
        assert!(SqliteDb::new(None)
            .keys("default")
            .await
            .unwrap()
            .is_empty());
    }
}
