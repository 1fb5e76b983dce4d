//! The audit log's entries and their hash chain (ADM audit, REC access history). An `AuditEvent`
//! is what happened (who, what, to what, for whom, why, from where, how it ended); an
//! `AuditEntry` is that event sealed into a chain: `seq`, the time, the previous entry's hash and
//! its own hash, SHA-256 over a canonical, length-prefixed encoding of all of it. Changing any
//! field of a stored entry, dropping one or reordering them breaks a link that `check_after`
//! finds. Pure: the writer that assigns `seq` and the time lives in the store crate.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;

use crate::{AccountId, PatientId, RoleName, StaffId, ValidationError};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: a staff member (with the roles the session held) or a part of the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Actor {
    Staff {
        id: StaffId,
        roles: Vec<RoleName>,
    },
    /// A named component (`notifier`, `lab_webhook`, ...).
    System {
        name: String,
    },
}

impl Actor {
    pub fn system(name: &str) -> Result<Self, ValidationError> {
        check_token(name, "actor", 64, false)?;
        Ok(Actor::System { name: name.to_string() })
    }

    /// The actor's index key (the `audit_by_actor` partition): a staff id, or `system:<name>`.
    pub fn key(&self) -> String {
        match self {
            Actor::Staff { id, .. } => id.to_string(),
            Actor::System { name } => format!("system:{name}"),
        }
    }
}

/// A stable action name: dotted lowercase words, `record.read`, `staff.create`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "record.read")]
pub struct Action(String);

impl Action {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        check_token(s, "action", 64, true)?;
        if !s.contains('.') {
            return Err(ValidationError::new("action", "must be dotted, like record.read"));
        }
        Ok(Action(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Action {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Action::parse(&s)
    }
}

impl From<Action> for String {
    fn from(a: Action) -> String {
        a.0
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was acted on: a kind (`record`, `report`, `staff`) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

impl Target {
    pub fn new(kind: &str, id: impl fmt::Display) -> Result<Self, ValidationError> {
        check_token(kind, "target.kind", 32, false)?;
        let id = id.to_string();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(ValidationError::new("target.id", "must be 1 to 128 printable characters"));
        }
        Ok(Target { kind: kind.to_string(), id })
    }
}

/// The patient an action concerns: the account (whose access history shows it) and, when one
/// 就诊人 of the account is meant, which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Concerning {
    pub account: AccountId,
    pub patient: Option<PatientId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused by a permission check (still audited: a refused read is worth knowing).
    Denied,
    /// Attempted and failed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Something to audit, before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    pub actor: Actor,
    pub action: Action,
    pub target: Target,
    pub concerning: Option<Concerning>,
    /// Why (a treatment relationship, a complaint number, ...): at most 256 characters.
    pub purpose: Option<String>,
    #[schema(value_type = Option<String>)]
    pub source_ip: Option<IpAddr>,
    pub outcome: Outcome,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: Action, target: Target) -> Self {
        AuditEvent {
            actor,
            action,
            target,
            concerning: None,
            purpose: None,
            source_ip: None,
            outcome: Outcome::Success,
        }
    }
    pub fn concerning(mut self, account: AccountId, patient: Option<PatientId>) -> Self {
        self.concerning = Some(Concerning { account, patient });
        self
    }
    pub fn purpose(mut self, purpose: &str) -> Result<Self, ValidationError> {
        let p = purpose.trim();
        if p.is_empty() || p.chars().count() > 256 || p.chars().any(char::is_control) {
            return Err(ValidationError::new("purpose", "must be 1 to 256 printable characters"));
        }
        self.purpose = Some(p.to_string());
        Ok(self)
    }
    pub fn from_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// An event sealed into a chain. `chain` names the writer (one per node: each node appends to
/// its own chain, so appends never need a cluster-wide lock); `seq` counts from 1 per chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub chain: String,
    pub seq: u64,
    /// UTC, whole milliseconds (what the hash covers and CQL stores).
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
    /// Hex SHA-256 of the previous entry of the chain (`GENESIS_HASH` for seq 1).
    pub prev_hash: String,
    /// Hex SHA-256 of the canonical encoding of everything above.
    pub hash: String,
}

/// Why an entry does not follow its predecessor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("expected seq {expected}, found {found}")]
    Seq { expected: u64, found: u64 },
    #[error("belongs to chain {found:?}, not {expected:?}")]
    Chain { expected: String, found: String },
    #[error("prev_hash does not match the previous entry's hash")]
    PrevHash,
    #[error("hash does not match the entry's content")]
    Hash,
    #[error("time goes backwards from the previous entry")]
    TimeReversed,
}

impl AuditEntry {
    /// Seals `event` as entry `seq` of `chain`, after the entry whose hash is `prev_hash`.
    pub fn seal(chain: &str, seq: u64, prev_hash: &str, at: DateTime<Utc>, event: AuditEvent) -> Self {
        let at = truncate_ms(at);
        let mut e = AuditEntry {
            chain: chain.to_string(),
            seq,
            at,
            event,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// The hash this entry's content calls for (compare with `hash`).
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    /// The canonical encoding: a version tag, then every field in a fixed order, integers
    /// big-endian, strings and lists length-prefixed, options with a presence byte. No two
    /// different entries encode alike, and serde's formatting choices play no part.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Canon(Vec::with_capacity(256));
        b.raw(b"hospital.audit.v1");
        b.str(&self.chain);
        b.u64(self.seq);
        b.str(&self.prev_hash);
        b.u64(self.at.timestamp_millis() as u64);
        let e = &self.event;
        match &e.actor {
            Actor::Staff { id, roles } => {
                b.u8(1);
                b.raw(id.0.as_bytes());
                b.u64(roles.len() as u64);
                for r in roles {
                    b.str(&r.to_string());
                }
            }
            Actor::System { name } => {
                b.u8(2);
                b.str(name);
            }
        }
        b.str(e.action.as_str());
        b.str(&e.target.kind);
        b.str(&e.target.id);
        match &e.concerning {
            None => b.u8(0),
            Some(c) => {
                b.u8(1);
                b.raw(c.account.0.as_bytes());
                match c.patient {
                    None => b.u8(0),
                    Some(p) => {
                        b.u8(1);
                        b.raw(p.0.as_bytes());
                    }
                }
            }
        }
        b.opt_str(e.purpose.as_deref());
        b.opt_str(e.source_ip.map(|ip| ip.to_string()).as_deref());
        b.str(e.outcome.as_str());
        b.0
    }

    /// Checks that this entry follows `prev` (None: it must be the first of `chain`) and that
    /// its hash matches its content.
    pub fn check_after(&self, chain: &str, prev: Option<&AuditEntry>) -> Result<(), ChainBreak> {
        if self.chain != chain {
            return Err(ChainBreak::Chain { expected: chain.to_string(), found: self.chain.clone() });
        }
        let expected = prev.map_or(1, |p| p.seq + 1);
        if self.seq != expected {
            return Err(ChainBreak::Seq { expected, found: self.seq });
        }
        if self.prev_hash != prev.map_or(GENESIS_HASH, |p| p.hash.as_str()) {
            return Err(ChainBreak::PrevHash);
        }
        if self.hash != self.compute_hash() {
            return Err(ChainBreak::Hash);
        }
        if prev.is_some_and(|p| self.at < p.at) {
            return Err(ChainBreak::TimeReversed);
        }
        Ok(())
    }
}

/// Time buckets of the audit tables' partitions, each sized to the rate of its index so no
/// partition grows without bound: the whole chain and an action by the hour, a staff member by
/// the day, a patient's account by the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Month,
}

impl Bucket {
    /// The bucket `at` falls in: unix hours, unix days, or months since year 0.
    pub fn of(self, at: DateTime<Utc>) -> i64 {
        match self {
            Bucket::Hour => at.timestamp().div_euclid(3600),
            Bucket::Day => at.timestamp().div_euclid(86_400),
            Bucket::Month => i64::from(at.year()) * 12 + i64::from(at.month0()),
        }
    }

    /// The first instant of bucket `b`.
    pub fn start(self, b: i64) -> DateTime<Utc> {
        match self {
            Bucket::Hour => Utc.timestamp_opt(b * 3600, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC),
            Bucket::Day => Utc.timestamp_opt(b * 86_400, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC),
            Bucket::Month => Utc
                .with_ymd_and_hms(b.div_euclid(12) as i32, b.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

/// `at` without its sub-millisecond part.
pub fn truncate_ms(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// Lowercase ASCII letters, digits and `_` (and `.` between words when `dotted`).
fn check_token(s: &str, field: &'static str, max: usize, dotted: bool) -> Result<(), ValidationError> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        && (dotted || !s.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("must be lowercase words of a-z, 0-9 and _ (at most {max})")))
    }
}

struct Canon(Vec<u8>);

impl Canon {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.raw(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::new(
            Actor::Staff { id: StaffId::new(), roles: vec![crate::Role::Doctor.into()] },
            Action::parse("record.read").unwrap(),
            Target::new("record", "r-1").unwrap(),
        )
        .concerning(AccountId::new(), Some(PatientId::new()))
        .purpose("treatment")
        .unwrap()
        .from_ip(Some("10.1.2.3".parse().unwrap()))
    }

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        let t0 = Utc::now();
        for seq in 1..=n {
            let prev = out.last().map_or(GENESIS_HASH.to_string(), |p| p.hash.clone());
            out.push(AuditEntry::seal("main", seq, &prev, t0 + chrono::Duration::seconds(seq as i64), event()));
        }
        out
    }

    #[test]
    fn a_sealed_chain_checks_out() {
        let c = chain(3);
        assert_eq!(c[0].check_after("main", None), Ok(()));
        assert_eq!(c[1].check_after("main", Some(&c[0])), Ok(()));
        assert_eq!(c[2].check_after("main", Some(&c[1])), Ok(()));
        assert_eq!(c[0].hash.len(), 64);
        assert_eq!(c[0].at.timestamp_subsec_nanos() % 1_000_000, 0, "whole milliseconds");
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let c = chain(2);
        type Edit = Box<dyn Fn(&mut AuditEntry)>;
        let mut edits: Vec<Edit> = vec![
            Box::new(|e| e.chain = "other".into()),
            Box::new(|e| e.at += chrono::Duration::milliseconds(1)),
            Box::new(|e| e.event.action = Action::parse("record.write").unwrap()),
            Box::new(|e| e.event.target.id = "r-2".into()),
            Box::new(|e| e.event.target.kind = "report".into()),
            Box::new(|e| e.event.concerning = None),
            Box::new(|e| e.event.purpose = Some("curiosity".into())),
            Box::new(|e| e.event.source_ip = Some("10.1.2.4".parse().unwrap())),
            Box::new(|e| e.event.outcome = Outcome::Denied),
            Box::new(|e| e.event.actor = Actor::system("notifier").unwrap()),
            Box::new(|e| {
                if let Actor::Staff { roles, .. } = &mut e.event.actor {
                    roles.push(crate::Role::Admin.into())
                }
            }),
        ];
        for (i, edit) in edits.iter_mut().enumerate() {
            let mut e = c[1].clone();
            edit(&mut e);
            assert_ne!(e.compute_hash(), c[1].hash, "edit {i} changes the hash");
        }
    }

    #[test]
    fn breaks_are_named() {
        let c = chain(3);
        assert_eq!(c[2].check_after("main", Some(&c[0])), Err(ChainBreak::Seq { expected: 2, found: 3 }));
        let mut forged = c[1].clone();
        forged.prev_hash = c[1].hash.clone();
        forged.hash = forged.compute_hash();
        assert_eq!(forged.check_after("main", Some(&c[0])), Err(ChainBreak::PrevHash));
        let mut edited = c[1].clone();
        edited.event.purpose = Some("x".into());
        assert_eq!(edited.check_after("main", Some(&c[0])), Err(ChainBreak::Hash));
        assert!(matches!(c[0].check_after("node-2", None), Err(ChainBreak::Chain { .. })));
    }

    #[test]
    fn names_are_validated() {
        assert!(Action::parse("record.read").is_ok());
        assert!(Action::parse("staff.create_account").is_ok());
        for bad in ["", "record", "Record.read", "record..read", ".read", "record.read;drop", "记录.读"] {
            assert!(Action::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Target::new("record", "").is_err());
        assert!(Target::new("Record", "1").is_err());
        assert!(serde_json::from_str::<Action>("\"NOPE\"").is_err(), "deserialising validates too");
    }

    #[test]
    fn buckets_cover_their_starts() {
        let at = Utc.with_ymd_and_hms(2026, 3, 15, 13, 45, 0).unwrap();
        for b in [Bucket::Hour, Bucket::Day, Bucket::Month] {
            let id = b.of(at);
            assert!(b.start(id) <= at && b.of(b.start(id)) == id, "{b:?}");
            assert_eq!(b.of(b.start(id + 1)), id + 1);
        }
        assert_eq!(Bucket::Month.start(Bucket::Month.of(at)), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn json_round_trip_keeps_the_hash() {
        let c = chain(1);
        let back: AuditEntry = serde_json::from_str(&serde_json::to_string(&c[0]).unwrap()).unwrap();
        assert_eq!(back, c[0]);
        assert_eq!(back.compute_hash(), c[0].hash);
    }
}
