//! `EphemeralKv` on Redis (PLAT-4): sessions, codes and counters shared by every gateway node.
//! Each operation is one Redis command or one MULTI/EXEC pipeline, so it is atomic on its own.
//! All keys are namespaced (`<prefix>:...`) so the platform can share a Redis with others.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;

use crate::error::Result;
use crate::redis_cmd::{ms, set_if_absent};
use crate::traits::{log_counter_key, log_id_key, log_value_key, EphemeralKv, LOG_COUNTER_TTL};

#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
    prefix: String,
}

/// How long a Redis command may take before it fails (`unavailable` to the caller). The
/// driver's default is 500 ms, which a busy two-core node exceeds under a storm or tens of
/// thousands of sockets without Redis being down: a command failed then for nothing (a 503 in
/// the three-node fan-out run). A Redis that is really gone fails the connection at once anyway.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

impl RedisKv {
    /// Connects (with automatic reconnection) to `url`, e.g. `redis://127.0.0.1:6379/0`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Self::connect_with(url, prefix, DEFAULT_RESPONSE_TIMEOUT).await
    }

    /// As `connect`, with commands failing after `response_timeout`.
    pub async fn connect_with(url: &str, prefix: &str, response_timeout: Duration) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new().set_response_timeout(Some(response_timeout));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { conn, prefix: prefix.to_string() })
    }

    fn k(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The connection, for other Redis users of the platform (fan-out, next issues).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// `log_append_all` in one script, so Redis runs it atomically and in one round trip: each
/// number, its value and its id marker are written together or not at all, and an id seen before
/// (earlier in the list too) keeps its first number. KEYS[1] is the counter, KEYS[2..] the ids'
/// markers; ARGV[1] the ttl, ARGV[2] the value keys' prefix, ARGV[3] the counter's ttl, ARGV[4..]
/// the values. (The value key is built in the script; on a Redis Cluster the log's keys would
/// need a hash tag to share a slot.)
const LOG_APPEND: &str = r#"
local out = {}
local counted = false
for i = 2, #KEYS do
  local seen = redis.call('GET', KEYS[i])
  if seen then
    out[#out + 1] = tonumber(seen)
    out[#out + 1] = 0
  else
    local n = redis.call('INCR', KEYS[1])
    counted = true
    redis.call('SET', ARGV[2] .. n, ARGV[i + 2], 'PX', ARGV[1])
    redis.call('SET', KEYS[i], n, 'PX', ARGV[1])
    out[#out + 1] = n
    out[#out + 1] = 1
  end
end
if counted then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return out
"#;

#[async_trait]
impl EphemeralKv for RedisKv {
    async fn log_append_all(&self, stream: &str, items: &[(&str, &[u8])], ttl: Duration) -> Result<Vec<(u64, bool)>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let value_prefix = self.k(&log_value_key(stream, 0));
        let value_prefix = &value_prefix[..value_prefix.len() - 1];
        // Hashed once (the SHA1 `EVALSHA` names it by), not per append.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(LOG_APPEND));
        let mut call = SCRIPT.prepare_invoke();
        call.key(self.k(&log_counter_key(stream)));
        for (event_id, _) in items {
            call.key(self.k(&log_id_key(event_id)));
        }
        call.arg(ms(ttl)).arg(value_prefix).arg(ms(LOG_COUNTER_TTL));
        for (_, value) in items {
            call.arg(*value);
        }
        let flat: Vec<u64> = call.invoke_async(&mut self.conn.clone()).await?;
        if flat.len() != 2 * items.len() {
            return Err(crate::StoreError::Engine(format!(
                "the log script answered {} numbers for {} events",
                flat.len(),
                items.len()
            )));
        }
        Ok(flat.chunks(2).map(|p| (p[0], p[1] == 1)).collect())
    }

    async fn log_range(&self, stream: &str, from: u64, to: u64) -> Result<Vec<Option<Vec<u8>>>> {
        if to < from {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = (from..=to).map(|n| self.k(&log_value_key(stream, n))).collect();
        Ok(redis::cmd("MGET").arg(keys).query_async(&mut self.conn.clone()).await?)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(redis::cmd("GET").arg(self.k(key)).query_async(&mut self.conn.clone()).await?)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let () = redis::cmd("SET")
            .arg(self.k(key))
            .arg(value)
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        set_if_absent(&self.conn, self.k(key), value, ttl).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(redis::cmd("GETDEL").arg(self.k(key)).query_async(&mut self.conn.clone()).await?)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let _: i64 = redis::cmd("DEL").arg(self.k(key)).query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let t: i64 = redis::cmd("PTTL").arg(self.k(key)).query_async(&mut self.conn.clone()).await?;
        Ok(match t {
            -2 => None,
            -1 => Some(Duration::MAX),
            t => Some(Duration::from_millis(t.max(0) as u64)),
        })
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        let k = self.k(key);
        // PEXPIRE NX sets the expiry only when the key has none: a new counter gets one, an
        // existing one keeps its window.
        let (n,): (i64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&k)
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(ms(ttl))
            .arg("NX")
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(n)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()> {
        let k = self.k(key);
        let () = redis::pipe()
            .atomic()
            .cmd("SADD")
            .arg(&k)
            .arg(member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(ms(ttl))
            .arg("NX")
            .ignore()
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(ms(ttl))
            .arg("GT")
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let _: i64 = redis::cmd("SREM").arg(self.k(key)).arg(member).query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        Ok(redis::cmd("SMEMBERS").arg(self.k(key)).query_async(&mut self.conn.clone()).await?)
    }

    async fn ping(&self) -> Result<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await?;
        Ok(())
    }
}
