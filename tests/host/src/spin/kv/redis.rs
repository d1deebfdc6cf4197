//! The `redis` key-value backend, as Spin's `crates/key-value-redis`: one `ConnectionManager`
//! (the redis crate's reconnecting client, with its default retry policy, as Spin uses it) per
//! configured label. As in Spin the label is not part of the key: every label pointed at one
//! Redis shares its keyspace, and `get-keys` is `KEYS *`. Redis does its own I/O on the tokio
//! reactor; nothing here blocks a worker.

use anyhow::{Context, Result};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

/// A connection to one Redis server.
#[derive(Clone)]
pub struct RedisDb {
    conn: ConnectionManager,
}

impl RedisDb {
    /// Connects to `url` (`redis://host:port[/db]`). With the server down this waits while the
    /// connection manager retries (over a minute here), as Spin's open does.
    pub async fn connect(url: &str) -> Result<RedisDb> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let conn = client
            .get_connection_manager()
            .await
            .context("cannot connect to Redis")?;
        Ok(RedisDb { conn })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.conn.clone().get(key).await?)
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<()> {
        Ok(self.conn.clone().set(key, value).await?)
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.conn.clone().del(key).await?)
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.conn.clone().exists(key).await?)
    }

    pub async fn keys(&self) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self.conn.clone().keys("*").await?;
        keys.sort();
        Ok(keys)
    }
}
