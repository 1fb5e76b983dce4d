//! Ownership of an actor across nodes: a lease in Redis with a fencing token (ARCHITECTURE.md,
//! "Several nodes on one ScyllaDB cluster").
//!
//! A node that wants to run, say, doctor D's schedule actor takes the lease `schedule:D` for a
//! short time and renews it while the actor runs. Each time the lease changes hands its fencing
//! token grows (a counter that never expires, so a token is never given twice). Every write the
//! owner makes carries its `Fence` (resource and token), and the store refuses a write whose token
//! is older than one it has already seen for that resource (`Conflict::StaleFence`). So a node
//! that stalled (a long GC-like pause, a partition) past its lease and woke up still believing it
//! owns D cannot overwrite what the new owner wrote: the lease alone cannot promise that, since
//! the old owner cannot know in time that its lease ran out; the fence in the store can.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use std::time::Duration;

use crate::error::Result;
use crate::redis_cmd::{ms, set_if_absent};

/// Who may write for a resource: its name, the fencing token of the lease the writer holds, and
/// the latest time (unix microseconds, the writer's clock) a write under it may begin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    pub resource: String,
    pub token: u64,
    /// Past this, the writer's lease may have run out and a newer owner begun: both stores
    /// refuse a write begun after it (on ScyllaDB, one whose write timestamp would fall after it:
    /// scylla/fence.rs). None: no deadline (a test's fence).
    #[serde(default)]
    pub until_us: Option<i64>,
}

const SCHEDULE: &str = "schedule:";
const PAYMENT: &str = "payment:";
const QUEUE: &str = "queue:";
const CONVERSATION: &str = "chat:";
const TICKET: &str = "ticket:";
const EXAM: &str = "exam:";
const VISIT: &str = "visit:";
const ACCOUNT: &str = "account:";

/// The resource a doctor's schedule actor leases and fences its writes with.
pub fn schedule_resource(doctor: hospital_domain::DoctorId) -> String {
    format!("{SCHEDULE}{doctor}")
}

/// The resource an order's payment actor leases and fences its writes with.
pub fn payment_resource(order: hospital_domain::OrderId) -> String {
    format!("{PAYMENT}{order}")
}

/// The resource a clinic session's queue actor leases and fences its writes with.
pub fn queue_resource(session: hospital_domain::SessionId) -> String {
    format!("{QUEUE}{session}")
}

/// The resource a conversation's actor leases and fences its writes with.
pub fn conversation_resource(conversation: hospital_domain::ConversationId) -> String {
    format!("{CONVERSATION}{conversation}")
}

/// The resource a ticket's actor (a message left outside service hours) leases and fences its
/// writes with.
pub fn ticket_resource(ticket: hospital_domain::TicketId) -> String {
    format!("{TICKET}{ticket}")
}

/// The resource an exam's actor leases and fences its writes with.
pub fn exam_resource(exam: hospital_domain::ExamId) -> String {
    format!("{EXAM}{exam}")
}

/// The resource a visit's actor leases and fences its writes with.
pub fn visit_resource(visit: hospital_domain::visit::VisitId) -> String {
    format!("{VISIT}{visit}")
}

/// The resource an account's actor (`patient`: its row, its 就诊人, its notification
/// preferences) leases and fences its writes with.
pub fn account_resource(account: hospital_domain::AccountId) -> String {
    format!("{ACCOUNT}{account}")
}

/// What a fence is for: the owned actor, by kind and id (the inverse of the `*_resource` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    Schedule(hospital_domain::DoctorId),
    Payment(hospital_domain::OrderId),
    Queue(hospital_domain::SessionId),
    Conversation(hospital_domain::ConversationId),
    Ticket(hospital_domain::TicketId),
    Exam(hospital_domain::ExamId),
    Visit(hospital_domain::visit::VisitId),
    Account(hospital_domain::AccountId),
}

impl std::fmt::Display for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owned::Schedule(d) => write!(f, "doctor {d}'s schedule"),
            Owned::Payment(o) => write!(f, "order {o}'s payment"),
            Owned::Queue(s) => write!(f, "session {s}'s queue"),
            Owned::Conversation(c) => write!(f, "conversation {c}"),
            Owned::Ticket(t) => write!(f, "ticket {t}"),
            Owned::Exam(e) => write!(f, "exam {e}"),
            Owned::Visit(v) => write!(f, "visit {v}"),
            Owned::Account(a) => write!(f, "account {a}"),
        }
    }
}

impl Fence {
    /// A doctor's schedule fence with no deadline (tests: a running actor's comes from its lease).
    pub fn schedule(doctor: hospital_domain::DoctorId, token: u64) -> Fence {
        Fence { resource: schedule_resource(doctor), token, until_us: None }
    }

    /// An order's payment fence with no deadline (tests, as `schedule`).
    pub fn payment(order: hospital_domain::OrderId, token: u64) -> Fence {
        Fence { resource: payment_resource(order), token, until_us: None }
    }

    /// A session's queue fence with no deadline (tests, as `schedule`).
    pub fn queue(session: hospital_domain::SessionId, token: u64) -> Fence {
        Fence { resource: queue_resource(session), token, until_us: None }
    }

    /// A conversation's fence with no deadline (tests, as `schedule`).
    pub fn conversation(conversation: hospital_domain::ConversationId, token: u64) -> Fence {
        Fence { resource: conversation_resource(conversation), token, until_us: None }
    }

    /// A ticket's fence with no deadline (tests, as `schedule`).
    pub fn ticket(ticket: hospital_domain::TicketId, token: u64) -> Fence {
        Fence { resource: ticket_resource(ticket), token, until_us: None }
    }

    /// An exam's fence with no deadline (tests, as `schedule`).
    pub fn exam(exam: hospital_domain::ExamId, token: u64) -> Fence {
        Fence { resource: exam_resource(exam), token, until_us: None }
    }

    /// A visit's fence with no deadline (tests, as `schedule`).
    pub fn visit(visit: hospital_domain::visit::VisitId, token: u64) -> Fence {
        Fence { resource: visit_resource(visit), token, until_us: None }
    }

    /// An account's fence with no deadline (tests, as `schedule`).
    pub fn account(account: hospital_domain::AccountId, token: u64) -> Fence {
        Fence { resource: account_resource(account), token, until_us: None }
    }

    /// Whether a write begun at `us` (unix microseconds) falls past the lease's deadline: then
    /// a newer owner may have begun, and both stores refuse it (`Conflict::StaleFence`).
    pub fn lapsed_at(&self, us: i64) -> bool {
        self.until_us.is_some_and(|until| us > until)
    }

    /// The owned actor this fence is for, if its resource names one.
    pub fn owned(&self) -> Option<Owned> {
        fn id<T: std::str::FromStr>(resource: &str, prefix: &str) -> Option<T> {
            resource.strip_prefix(prefix)?.parse().ok()
        }
        let r = self.resource.as_str();
        id(r, SCHEDULE)
            .map(Owned::Schedule)
            .or_else(|| id(r, PAYMENT).map(Owned::Payment))
            .or_else(|| id(r, QUEUE).map(Owned::Queue))
            .or_else(|| id(r, CONVERSATION).map(Owned::Conversation))
            .or_else(|| id(r, TICKET).map(Owned::Ticket))
            .or_else(|| id(r, EXAM).map(Owned::Exam))
            .or_else(|| id(r, VISIT).map(Owned::Visit))
            .or_else(|| id(r, ACCOUNT).map(Owned::Account))
    }
}

/// A lease held: the resource, who holds it, and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub resource: String,
    pub owner: String,
    pub token: u64,
    /// The latest time (unix microseconds) a write under the lease may begin: two thirds of its
    /// lifetime after it was last taken or renewed (counted from before the request was sent),
    /// so that a third of it, at least, separates the holder's last write from the moment the
    /// lease can pass to anyone else.
    pub until_us: i64,
}

impl Lease {
    /// The fence every write under this lease carries.
    pub fn fence(&self) -> Fence {
        Fence { resource: self.resource.clone(), token: self.token, until_us: Some(self.until_us) }
    }

    /// The deadline of a lease taken or renewed for `ttl` by a request sent at `sent_us`.
    fn deadline(sent_us: i64, ttl: Duration) -> i64 {
        sent_us + (ttl.as_micros() as i64) * 2 / 3
    }

    fn value(&self) -> String {
        format!("{}:{}", self.token, self.owner)
    }
}

/// Takes the lease if it is free (or already ours: then it is extended and keeps its token); a
/// new holder gets the next token. Returns the token, or -1 if another owner holds it.
const ACQUIRE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if string.sub(cur, sep + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, 1, sep - 1))
  end
  return -1
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. ':' .. ARGV[1], 'PX', ARGV[2])
return t
"#;

/// Extends the lease if it is still exactly this holding (same owner, same token).
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Gives the lease (or a lock) up if it is still exactly this holding.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Leases in Redis, shared by every node (keys `<prefix>:lease:<resource>` and, never expiring,
/// `<prefix>:fence:<resource>`).
#[derive(Clone)]
pub struct RedisLeases {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisLeases {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, prefix: prefix.to_string() }
    }

    fn lease_key(&self, resource: &str) -> String {
        format!("{}:lease:{resource}", self.prefix)
    }

    fn fence_key(&self, resource: &str) -> String {
        format!("{}:fence:{resource}", self.prefix)
    }

    /// Takes (or extends, if `owner` holds it) the lease on `resource` for `ttl`; None if
    /// another owner holds it.
    pub async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        let sent = now_us();
        let token: i64 = redis::Script::new(ACQUIRE)
            .key(self.lease_key(resource))
            .key(self.fence_key(resource))
            .arg(owner)
            .arg(ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((token > 0).then(|| Lease {
            resource: resource.to_string(),
            owner: owner.to_string(),
            token: token as u64,
            until_us: Lease::deadline(sent, ttl),
        }))
    }

    /// Extends a lease still held, and its deadline; false if it ran out or passed to someone
    /// else (then the holder must stop acting for the resource: its writes would be refused).
    pub async fn renew(&self, lease: &mut Lease, ttl: Duration) -> Result<bool> {
        let sent = now_us();
        let n: i64 = redis::Script::new(RENEW)
            .key(self.lease_key(&lease.resource))
            .arg(lease.value())
            .arg(ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        if n == 1 {
            lease.until_us = Lease::deadline(sent, ttl);
        }
        Ok(n == 1)
    }

    /// Gives a lease up (an actor stopping cleanly), so the next owner need not wait it out.
    pub async fn release(&self, lease: &Lease) -> Result<bool> {
        self.delete_if_held(self.lease_key(&lease.resource), &lease.value()).await
    }

    /// Deletes `key` if it still holds `value` (`RELEASE`): a lease's or a lock's letting go.
    async fn delete_if_held(&self, key: String, value: &str) -> Result<bool> {
        // Built once: a lock is let go on every booking's turn across nodes.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(RELEASE));
        let n: i64 = SCRIPT.key(key).arg(value).invoke_async(&mut self.conn.clone()).await?;
        Ok(n == 1)
    }

    /// Takes a short lock on `resource` for `holder` if nobody holds it, for `ttl` at most: a
    /// lease without a fencing token, for what is held for milliseconds and is too numerous to
    /// keep a counter each (a person's turn across nodes). False if another holds it.
    pub async fn lock(&self, resource: &str, holder: &str, ttl: Duration) -> Result<bool> {
        set_if_absent(&self.conn, self.lock_key(resource), holder, ttl).await
    }

    /// Lets a lock go if `holder` still holds it (not once it lapsed and passed to another).
    pub async fn unlock(&self, resource: &str, holder: &str) -> Result<bool> {
        self.delete_if_held(self.lock_key(resource), holder).await
    }

    fn lock_key(&self, resource: &str) -> String {
        format!("{}:lock:{resource}", self.prefix)
    }

    /// Who holds the lease now, and with which token.
    pub async fn holder(&self, resource: &str) -> Result<Option<(String, u64)>> {
        let v: Option<String> =
            redis::cmd("GET").arg(self.lease_key(resource)).query_async(&mut self.conn.clone()).await?;
        Ok(v.and_then(|v| {
            let (t, o) = v.split_once(':')?;
            Some((o.to_string(), t.parse().ok()?))
        }))
    }
}

/// One node at a time for a whole store: the lease a node on ScyllaDB takes at start, until each
/// actor's ownership is fenced there (schema.cql `node_lease`). `holder` names the node.
#[async_trait]
pub trait NodeLeases: Send + Sync {
    /// Takes the lease for `ttl` (or renews it if `holder` has it); the other holder's name if
    /// another node has it.
    async fn claim_node(&self, holder: &str, ttl: Duration) -> Result<Option<String>>;
    /// Extends the lease by `ttl` if `holder` still has it; false if it does not.
    async fn renew_node(&self, holder: &str, ttl: Duration) -> Result<bool>;
    /// Gives the lease up if `holder` has it, so the next node need not wait out the TTL.
    async fn release_node(&self, holder: &str) -> Result<()>;
}

/// The wall clock in microseconds since the epoch: what a lease's deadline and a ScyllaDB write
/// timestamp are both counted in.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::visit::VisitId;
    use hospital_domain::{AccountId, ConversationId, DoctorId, ExamId, OrderId, SessionId, TicketId};

    #[test]
    fn a_fence_names_its_owned_actor_and_nothing_else() {
        let kinds = [
            Owned::Schedule(DoctorId::new()),
            Owned::Payment(OrderId::new()),
            Owned::Queue(SessionId::new()),
            Owned::Conversation(ConversationId::new()),
            Owned::Ticket(TicketId::new()),
            Owned::Exam(ExamId::new()),
            Owned::Visit(VisitId::new()),
            Owned::Account(AccountId::new()),
        ];
        for owned in kinds {
            let fence = match owned {
                Owned::Schedule(id) => Fence::schedule(id, 1),
                Owned::Payment(id) => Fence::payment(id, 1),
                Owned::Queue(id) => Fence::queue(id, 1),
                Owned::Conversation(id) => Fence::conversation(id, 1),
                Owned::Ticket(id) => Fence::ticket(id, 1),
                Owned::Exam(id) => Fence::exam(id, 1),
                Owned::Visit(id) => Fence::visit(id, 1),
                Owned::Account(id) => Fence::account(id, 1),
            };
            assert_eq!(fence.owned(), Some(owned), "{}", fence.resource);
        }
        let named = |resource: &str| Fence { resource: resource.into(), token: 1, until_us: None }.owned();
        assert_eq!(named("dispatcher:outpatient"), None, "a kind with no fence");
        assert_eq!(named("exam:not-a-uuid"), None, "a malformed id");
        assert_eq!(named(&format!("visit{}", VisitId::new())), None, "no separator");
    }
}
