//! Redis commands the Redis-backed parts share (`redis_kv`, `lease`), in a module of its own so
//! neither depends on the other.

use redis::aio::ConnectionManager;
use std::time::Duration;

use crate::error::Result;

/// A lifetime as Redis' PX/PEXPIRE take it: whole milliseconds, at least one.
pub(crate) fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// `SET key value PX ttl NX`: whether the key was free and is now set (the KV's `put_if_absent`,
/// the leases' short locks).
pub(crate) async fn set_if_absent(
    conn: &ConnectionManager,
    key: String,
    value: impl redis::ToRedisArgs + Send + Sync,
    ttl: Duration,
) -> Result<bool> {
    let r: Option<String> =
        redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ms(ttl)).arg("NX").query_async(&mut conn.clone()).await?;
    Ok(r.is_some())
}
