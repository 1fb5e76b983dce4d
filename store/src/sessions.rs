//! Login sessions (AUTH-5) over any `EphemeralKv`: one key per session (`sess:<token hash>`,
//! expiring when the session would end) and one set per subject listing its sessions, so
//! "log out everywhere" finds them all. Written once, it runs on Redis and on the embedded store.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::model::{LoginSession, Subject};
use crate::traits::EphemeralKv;
use crate::StoreError;

#[derive(Clone)]
pub struct SessionStore {
    kv: Arc<dyn EphemeralKv>,
}

fn session_key(token_hash: &str) -> String {
    format!("sess:{token_hash}")
}
fn index_key(subject: &Subject) -> String {
    format!("sessidx:{}", subject.key())
}
fn ttl_until(end: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (end - now).to_std().unwrap_or(Duration::ZERO).max(Duration::from_millis(1))
}
/// The index outlives any one session by the longest absolute lifetime we allow.
const INDEX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

impl SessionStore {
    pub fn new(kv: Arc<dyn EphemeralKv>) -> Self {
        Self { kv }
    }

    pub async fn create(&self, s: &LoginSession, now: DateTime<Utc>) -> Result<()> {
        self.write(s, now).await?;
        self.kv.set_add(&index_key(&s.subject), &s.token_hash, INDEX_TTL).await
    }

    async fn write(&self, s: &LoginSession, now: DateTime<Utc>) -> Result<()> {
        let body = serde_json::to_vec(s).expect("session serialises");
        self.kv.put(&session_key(&s.token_hash), &body, ttl_until(s.ends_at(), now)).await
    }

    /// The live session for a token hash, or None if unknown, logged out, idle too long or past
    /// its absolute expiry.
    pub async fn get(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<LoginSession>> {
        let Some(raw) = self.kv.get(&session_key(token_hash)).await? else { return Ok(None) };
        let s: LoginSession =
            serde_json::from_slice(&raw).map_err(|source| StoreError::Decode { table: "sessions", source })?;
        Ok(s.is_live(now).then_some(s))
    }

    /// Records use of a session, pushing its idle end out. Callers throttle this (see the
    /// gateway's auth extractor) so that a busy client does not write on every request.
    pub async fn touch(&self, s: &LoginSession, now: DateTime<Utc>) -> Result<LoginSession> {
        let mut s = s.clone();
        s.last_seen_at = now;
        self.write(&s, now).await?;
        Ok(s)
    }

    pub async fn delete(&self, s: &LoginSession) -> Result<()> {
        self.kv.delete(&session_key(&s.token_hash)).await?;
        self.kv.set_remove(&index_key(&s.subject), &s.token_hash).await
    }

    /// The subject's live sessions (its devices), newest first.
    pub async fn list(&self, subject: &Subject, now: DateTime<Utc>) -> Result<Vec<LoginSession>> {
        let mut out = Vec::new();
        for hash in self.kv.set_members(&index_key(subject)).await? {
            match self.get(&hash, now).await? {
                Some(s) => out.push(s),
                // Expired sessions leave their hash behind in the index; tidy it here.
                None => self.kv.set_remove(&index_key(subject), &hash).await?,
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    /// Ends every session of a subject; returns how many were live.
    pub async fn delete_all(&self, subject: &Subject, now: DateTime<Utc>) -> Result<usize> {
        let live = self.list(subject, now).await?;
        for s in &live {
            self.delete(s).await?;
        }
        Ok(live.len())
    }
}
