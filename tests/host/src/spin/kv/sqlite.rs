//! The default key-value backend, as Spin's `spin` store type (`crates/key-value-spin`): one SQLite
//! database holding every store in table `spin_key_value (store, key, value)`, one connection
//! behind a mutex. Every call is its own statement (SQLite's implicit transaction), so a read
//! sees the last completed write. Calls run on tokio's blocking pool, never on the async workers
//! (Spin uses `block_in_place` for the same reason): a slow disk write must not stall other
//! requests' instances. Without a path the database lives in memory, as in Spin.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

/// One SQLite database (a file, or in memory) shared by every store label mapped to it.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Opens (creating when missing) the database at `path`, or an in-memory one.
    pub fn open(path: Option<&Path>) -> Result<SqliteDb> {
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
        Ok(SqliteDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .context("key-value task failed")?
        .map_err(Into::into)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_persist_across_a_reopen_and_stores_are_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        {
            let db = SqliteDb::open(Some(&path)).unwrap();
            db.set("default", "a", b"1".to_vec()).await.unwrap();
            db.set("default", "b", vec![0, 255, 7]).await.unwrap();
            db.set("default", "a", b"2".to_vec()).await.unwrap();
            db.set("default", "gone", b"x".to_vec()).await.unwrap();
            db.delete("default", "gone").await.unwrap();
            db.set("other", "a", b"o".to_vec()).await.unwrap();
        }
        let db = SqliteDb::open(Some(&path)).unwrap();
        assert_eq!(db.get("default", "a").await.unwrap().unwrap(), b"2");
        assert_eq!(
            db.get("default", "b").await.unwrap().unwrap(),
            vec![0, 255, 7]
        );
        assert_eq!(db.get("default", "gone").await.unwrap(), None);
        assert_eq!(db.keys("default").await.unwrap(), vec!["a", "b"]);
        assert_eq!(db.keys("other").await.unwrap(), vec!["a"]);
        assert!(SqliteDb::open(None)
            .unwrap()
            .keys("default")
            .await
            .unwrap()
            .is_empty());
    }
}
