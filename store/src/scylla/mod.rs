//! The ScyllaDB backend (feature `scylla`): every store trait over the tables of `schema.cql`,
//! for a cluster. Rows are the same JSON `body` as the embedded backend, so both pass the same
//! conformance suite and a row means the same thing in either.
//!
//! Uniqueness and atomicity come from lightweight transactions (Paxos, one partition at a time):
//! lookup rows are claimed with `INSERT ... IF NOT EXISTS`, the patient cap and the
//! accounts-per-person cap are compare-and-sets on a static `version` column of the account's
//! and the person's partition, and the ephemeral operations that
//! must be atomic (`put_if_absent`, `take`, `incr`) are conditional statements. Everything else
//! is a plain write at the session's default consistency (LOCAL_QUORUM).
//!
//! Statements are prepared on first use and cached (`CachingSession`); each names its table as
//! `<keyspace>.<table>`, so one process can talk to several keyspaces (the tests use a fresh one).

mod accounts;
mod audit;
mod backoffice;
mod booking;
mod catalog;
mod chat;
mod exams;
mod fence;
mod jobs;
mod kv;
mod node_lease;
mod notify;
mod outbox;
mod payments;
mod persons;
mod queues;
mod records;
mod trace;
mod vault;

/// The driver, for tools and tests that build their own session (`ScyllaStore::from_session`).
pub use ::scylla as driver;
pub use trace::{StatementRuns, StatementTrace};

use async_trait::async_trait;
use chrono::NaiveDate;
use scylla::client::caching_session::CachingSession;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::unprepared::Statement;
use scylla::value::{CqlDate, CqlValue, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::traits::DataStore;
use crate::StoreError;

/// The schema, executed by `create_schema`.
pub const SCHEMA: &str = include_str!("../../../schema.cql");

/// The keyspace name `schema.cql` uses; `create_schema` renames it.
const SCHEMA_KEYSPACE: &str = "hospital";
/// The replication factor `schema.cql` asks for.
const SCHEMA_RF: &str = "'replication_factor': 3";
/// How many prepared statements the session keeps (the backend uses a few dozen).
const STATEMENT_CACHE: usize = 256;

/// The ScyllaDB store. Cheap to clone: clones share one session (a pool per node and shard).
#[derive(Clone)]
pub struct ScyllaStore {
    session: Arc<CachingSession>,
    keyspace: Arc<str>,
    replication_factor: Option<u32>,
    /// The hospital's zone: which local day a booking counts under (analytics).
    zone: hospital_domain::time::HospitalZone,
    /// Whether booking writes add their analytics counters (see the embedded store's).
    rollups: bool,
    /// Which statements ran and how (tests only; see `trace`).
    trace: Option<Arc<StatementTrace>>,
    /// Rows per page of the paged listings (`bodies`).
    page_size: i32,
    /// The last write timestamp this process gave a fenced write (`write_timestamp`).
    last_write_us: Arc<AtomicI64>,
}

/// Rows per page of a paged listing unless set (`with_page_size`): the driver's own default.
const PAGE_SIZE: i32 = 5000;

macro_rules! from_scylla {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Scylla(e.to_string())
            }
        }
    )*};
}
from_scylla!(
    scylla::errors::NewSessionError,
    scylla::errors::ExecutionError,
    scylla::errors::PagerExecutionError,
    scylla::errors::IntoRowsResultError,
    scylla::errors::RowsError,
    scylla::errors::FirstRowError,
    scylla::errors::MaybeFirstRowError,
    scylla::errors::DeserializationError
);

impl ScyllaStore {
    /// Connects to the cluster. `uri` is one or more contact points, comma-separated, each
    /// `host:port` with an optional `scylla://` in front (`127.0.0.1:9042`). The keyspace need
    /// not exist yet: statements are prepared when first used, after `create_schema` if needed.
    pub async fn connect(uri: &str, keyspace: &str) -> Result<Self> {
        Self::connect_with(uri, keyspace, false).await
    }

    /// `connect`, or, with `test_server`, to a single-node CQL server for tests (kassandra) that
    /// keeps no schema versions or schema tables: the driver then neither waits for schema
    /// agreement after DDL nor reads schema metadata (which a cluster needs for its routing).
    pub async fn connect_with(uri: &str, keyspace: &str, test_server: bool) -> Result<Self> {
        let mut builder = SessionBuilder::new();
        for node in uri.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            builder = builder.known_node(node.strip_prefix("scylla://").unwrap_or(node).trim_end_matches('/'));
        }
        if test_server {
            builder = builder
                .auto_await_schema_agreement(false)
                .fetch_schema_metadata(false)
                .fetch_full_schema_metadata(false);
        }
        let session: Session = builder.build().await?;
        Self::from_session(session, keyspace)
    }

    /// The store over a session the caller built (its own driver settings: a test server that
    /// is not ScyllaDB needs schema-agreement waiting off).
    pub fn from_session(session: Session, keyspace: &str) -> Result<Self> {
        if keyspace.is_empty()
            || keyspace.len() > 48
            || !keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Scylla(format!("invalid keyspace name {keyspace:?}")));
        }
        Ok(Self {
            session: Arc::new(CachingSession::from(session, STATEMENT_CACHE)),
            keyspace: keyspace.into(),
            replication_factor: None,
            zone: Default::default(),
            rollups: true,
            trace: None,
            page_size: PAGE_SIZE,
            last_write_us: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Rows per page of the paged listings (5,000 unless set): tests set a few, so that every
    /// listing's page loop runs more than once.
    pub fn with_page_size(mut self, rows: i32) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// Records every statement run and its outcome into `trace`.
    pub fn with_trace(mut self, trace: Arc<StatementTrace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Notes a statement's outcome when tracing.
    fn note<T, E: std::fmt::Display>(&self, cql: &str, r: &std::result::Result<T, E>) {
        if let Some(t) = &self.trace {
            t.note(&self.keyspace, cql, r.as_ref().err().map(ToString::to_string));
        }
    }

    /// Counts analytics in the hospital's zone (Asia/Shanghai by default).
    pub fn with_zone(mut self, zone: hospital_domain::time::HospitalZone) -> Self {
        self.zone = zone;
        self
    }

    /// Booking writes add analytics counters (`true`, the default) or not.
    pub fn with_rollups(mut self, on: bool) -> Self {
        self.rollups = on;
        self
    }

    /// Overrides the replication factor `create_schema` gives the keyspace (3 in `schema.cql`);
    /// 1 for a single-node test cluster.
    pub fn with_replication_factor(mut self, rf: u32) -> Self {
        self.replication_factor = Some(rf);
        self
    }

    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The driver session, for tools and tests.
    pub fn session(&self) -> &Session {
        self.session.get_session()
    }

    /// Creates the keyspace and every table of `schema.cql` (idempotent: `IF NOT EXISTS`). The
    /// driver waits for schema agreement after each statement.
    pub async fn create_schema(&self) -> Result<()> {
        for stmt in self.schema_statements() {
            self.session.get_session().query_unpaged(stmt, ()).await?;
        }
        Ok(())
    }

    /// The statements `create_schema` runs: `schema.cql` for this keyspace and replication factor.
    pub fn schema_statements(&self) -> Vec<String> {
        schema_statements(SCHEMA, &self.keyspace, self.replication_factor)
    }

    /// The statement text with `{ks}` replaced by the keyspace.
    fn cql(&self, template: &str) -> String {
        template.replace("{ks}", &self.keyspace)
    }

    /// Executes a (cached, prepared) statement.
    async fn exec(&self, template: &str, values: impl SerializeRow) -> Result<QueryResult> {
        let cql = self.cql(template);
        let r = self.session.execute_unpaged(cql.as_str(), values).await;
        self.note(&cql, &r);
        Ok(r?)
    }

    /// Executes a statement with its own settings (consistency), prepared and cached by text.
    async fn exec_stmt(&self, stmt: Statement, values: impl SerializeRow) -> Result<QueryResult> {
        let cql = stmt.contents.clone();
        let r = self.session.execute_unpaged(stmt, values).await;
        self.note(&cql, &r);
        Ok(r?)
    }

    /// Every row of a query, typed.
    async fn rows<R>(&self, template: &str, values: impl SerializeRow) -> Result<Vec<R>>
    where
        R: for<'f> DeserializeRow<'f, 'f>,
    {
        let res = self.exec(template, values).await?.into_rows_result()?;
        let rows = res.rows::<R>()?.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The first row of a query, typed, if any.
    async fn row<R>(&self, template: &str, values: impl SerializeRow) -> Result<Option<R>>
    where
        R: for<'f> DeserializeRow<'f, 'f>,
    {
        let res = self.exec(template, values).await?.into_rows_result()?;
        Ok(res.maybe_first_row::<R>()?)
    }

    /// The `body` of an owned actor's row (a queue, a conversation, a ticket, an exam, a visit),
    /// decoded. A row with no body is a new owner's claim alone (scylla/fence.rs: the fence is
    /// claimed before the actor's first write), which reads as none.
    async fn owned_body<T: DeserializeOwned>(
        &self,
        table: &'static str,
        template: &str,
        values: impl SerializeRow,
    ) -> Result<Option<T>> {
        match self.row::<(Option<String>,)>(template, values).await? {
            Some((Some(body),)) => Ok(Some(decode(table, &body)?)),
            _ => Ok(None),
        }
    }

    /// Executes a conditional statement (LWT) and reads its outcome.
    async fn lwt(&self, template: &str, values: impl SerializeRow) -> Result<Lwt> {
        Lwt::from_result(self.exec(template, values).await?)
    }

    /// The `body` of every row a query returns, decoded, page by page (so a long listing is
    /// never one huge response): the catalogue scans without a partition key, and the booking
    /// listings, whose partitions grow with the years.
    async fn bodies<T: DeserializeOwned>(
        &self,
        table: &'static str,
        template: &str,
        values: impl SerializeRow,
    ) -> Result<Vec<T>> {
        use scylla::response::{PagingState, PagingStateResponse};
        let mut out = Vec::new();
        let mut paging = PagingState::start();
        let cql = self.cql(template);
        let mut stmt = Statement::new(cql.as_str());
        stmt.set_page_size(self.page_size);
        loop {
            let r = self.session.execute_single_page(stmt.clone(), &values, paging).await;
            self.note(&cql, &r);
            let (res, next) = r?;
            let rows = res.into_rows_result()?;
            for row in rows.rows::<(String,)>()? {
                out.push(decode(table, &row?.0)?);
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => break,
            }
        }
        Ok(out)
    }

    /// Runs the writes as one batch (logged unless it stays in one partition).
    async fn run_batch(&self, writes: Writes, batch_type: BatchType) -> Result<()> {
        self.run_batch_at(&writes, batch_type, None).await.map(drop)
    }

    /// Runs the writes as one batch, every write at `timestamp` (microseconds) if given, else
    /// at the coordinator's; the answer (a conditional batch's `[applied]` row) unless there
    /// was nothing to write.
    async fn run_batch_at(
        &self,
        writes: &Writes,
        batch_type: BatchType,
        timestamp: Option<i64>,
    ) -> Result<Option<QueryResult>> {
        if writes.statements.is_empty() {
            return Ok(None);
        }
        let mut batch = Batch::new(batch_type);
        batch.set_timestamp(timestamp);
        for s in &writes.statements {
            batch.append_statement(s.as_str());
        }
        let r = self.session.batch(&batch, &writes.values).await;
        for s in &writes.statements {
            self.note(s, &r);
        }
        Ok(Some(r?))
    }

    /// A write timestamp (microseconds since the epoch) from this process' clock, later than
    /// every one it gave before, even if the clock steps back.
    fn write_timestamp(&self) -> i64 {
        let now = crate::lease::now_us();
        let mut last = self.last_write_us.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_write_us.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// A batch being built: statements and their values, side by side, and about how many bytes of
/// values it carries (what the server's batch size thresholds measure).
#[derive(Default, Clone)]
struct Writes {
    statements: Vec<String>,
    values: Vec<Vec<CqlValue>>,
    bytes: usize,
}

impl Writes {
    fn push(&mut self, store: &ScyllaStore, template: &str, values: Vec<CqlValue>) {
        self.bytes += values.iter().map(value_size).sum::<usize>();
        self.statements.push(store.cql(template));
        self.values.push(values);
    }

    fn len(&self) -> usize {
        self.statements.len()
    }

    fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Moves `other`'s statements to the end of this batch.
    fn append(&mut self, other: Writes) {
        self.statements.extend(other.statements);
        self.values.extend(other.values);
        self.bytes += other.bytes;
    }
}

/// About how many bytes a bound value takes on the wire.
fn value_size(v: &CqlValue) -> usize {
    match v {
        CqlValue::Text(s) | CqlValue::Ascii(s) => s.len(),
        CqlValue::Blob(b) => b.len(),
        _ => 16,
    }
}

fn text(s: impl Into<String>) -> CqlValue {
    CqlValue::Text(s.into())
}

#[async_trait]
impl DataStore for ScyllaStore {
    async fn ping(&self) -> Result<()> {
        let _: Option<(String,)> = self.row("SELECT release_version FROM system.local", ()).await?;
        Ok(())
    }

    async fn claim_fence(&self, fence: &crate::Fence) -> Result<()> {
        self.claim(fence).await
    }
}

/// The outcome of a conditional statement: `[applied]`, and the columns ScyllaDB returned with
/// it (the old row for `IF [NOT] EXISTS`, the columns of the condition otherwise; None = null).
#[derive(Debug, Default)]
struct Lwt {
    applied: bool,
    columns: HashMap<String, Option<CqlValue>>,
}

impl Lwt {
    fn from_result(res: QueryResult) -> Result<Self> {
        let rows = res.into_rows_result()?;
        let names: Vec<String> = rows.column_specs().iter().map(|c| c.name().to_string()).collect();
        let Some(row) = rows.maybe_first_row::<Row>()? else {
            return Err(StoreError::Scylla("a conditional statement returned no row".into()));
        };
        let mut out = Lwt::default();
        let mut saw_applied = false;
        for (name, value) in names.into_iter().zip(row.columns) {
            if name == "[applied]" {
                saw_applied = true;
                out.applied = matches!(value, Some(CqlValue::Boolean(true)));
            } else {
                out.columns.insert(name, value);
            }
        }
        if !saw_applied {
            return Err(StoreError::Scylla("a conditional statement returned no [applied] column".into()));
        }
        Ok(out)
    }

    /// Whether the result carries the column at all (null or not).
    fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }
    fn value(&self, column: &str) -> Option<&CqlValue> {
        self.columns.get(column).and_then(Option::as_ref)
    }
    fn uuid(&self, column: &str) -> Option<uuid::Uuid> {
        match self.value(column) {
            Some(CqlValue::Uuid(u)) => Some(*u),
            _ => None,
        }
    }
    fn bigint(&self, column: &str) -> Option<i64> {
        match self.value(column) {
            Some(CqlValue::BigInt(n)) => Some(*n),
            _ => None,
        }
    }
    fn text(&self, column: &str) -> Option<String> {
        match self.value(column) {
            Some(CqlValue::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }
    fn blob(&self, column: &str) -> Option<Vec<u8>> {
        match self.value(column) {
            Some(CqlValue::Blob(b)) => Some(b.clone()),
            _ => None,
        }
    }
}

/// The statements of a schema file, with the keyspace renamed and the replication factor
/// replaced if asked: split on `;`, `--` and `//` comments dropped, `USE` skipped (statements name
/// their keyspace instead) and table names qualified with the keyspace.
fn schema_statements(schema: &str, keyspace: &str, rf: Option<u32>) -> Vec<String> {
    let without_comments: String = schema
        .lines()
        .map(|l| {
            let cut = [l.find("--"), l.find("//")].into_iter().flatten().min().unwrap_or(l.len());
            &l[..cut]
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for raw in without_comments.split(';') {
        let stmt = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if stmt.is_empty() {
            continue;
        }
        let upper = stmt.to_ascii_uppercase();
        if upper.starts_with("USE ") {
            continue;
        }
        let stmt = if upper.starts_with("CREATE KEYSPACE") {
            let mut s = stmt.replacen(&format!(" {SCHEMA_KEYSPACE} "), &format!(" {keyspace} "), 1);
            if let Some(rf) = rf {
                s = s.replace(SCHEMA_RF, &format!("'replication_factor': {rf}"));
            }
            s
        } else if let Some(rest) = strip_prefix_ci(&stmt, "CREATE TABLE IF NOT EXISTS ") {
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.{rest}")
        } else {
            stmt
        };
        out.push(stmt);
    }
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("rows serialise")
}

fn decode<T: DeserializeOwned>(table: &'static str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|source| StoreError::Decode { table, source })
}

/// A CQL `date`: days since the epoch, offset by 2^31.
fn cql_date(d: NaiveDate) -> CqlDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");
    CqlDate(((d - epoch).num_days() + (1i64 << 31)) as u32)
}

pub(crate) fn now_ms() -> i64 {
    crate::lease::now_us() / 1000
}

/// A CQL TTL in whole seconds, rounded up (CQL has no finer TTL; `expires_at` carries the
/// milliseconds), at least 1 (0 would mean "never") and at most CQL's 20 years.
fn ttl_secs(d: Duration) -> i32 {
    const MAX: u128 = 20 * 365 * 24 * 3600;
    d.as_millis().div_ceil(1000).clamp(1, MAX) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_statements_are_rewritten() {
        let stmts = schema_statements(SCHEMA, "hospital_test", Some(1));
        assert!(stmts[0].starts_with("CREATE KEYSPACE IF NOT EXISTS hospital_test WITH"), "{}", stmts[0]);
        assert!(stmts[0].contains("'replication_factor': 1"), "{}", stmts[0]);
        assert!(stmts.iter().all(|s| !s.to_ascii_uppercase().starts_with("USE ")));
        let tables: Vec<&String> = stmts.iter().filter(|s| s.starts_with("CREATE TABLE")).collect();
        assert!(tables.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS hospital_test.")));
        assert!(stmts.iter().all(|s| !s.contains("--")), "comments are dropped");
        // A missing `;` in schema.cql glues two statements together (it happened once).
        assert!(stmts.iter().all(|s| s.matches("CREATE ").count() == 1), "one statement each");
        // One CQL table per embedded table, except the embedded engine's own TTL index.
        let mut names: Vec<String> = tables
            .iter()
            .map(|s| {
                s["CREATE TABLE IF NOT EXISTS hospital_test.".len()..].split([' ', '(']).next().unwrap().to_string()
            })
            .collect();
        // The node lease is ScyllaDB's alone: the embedded store is one node by construction;
        // its event logs live in its kv table, written atomically (`kv_log` exists because
        // ScyllaDB cannot write a number and its event atomically across two keys).
        names.retain(|n| n != "node_lease" && n != "kv_log");
        names.sort();
        let mut embedded: Vec<String> = crate::embedded::tables::ALL
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| !n.starts_with('_'))
            // Fencing tokens: ScyllaDB keeps a doctor's as the static `fence` column of its
            // `appointments_by_doctor` partition (scylla/booking.rs), not in a table of their own.
            .filter(|n| n != "fences")
            // A balance's movement count: ScyllaDB keeps it as `balances.version`, beside the
            // balance it numbers, so it has no table of its own there.
            .filter(|n| n != "balance_versions")
            .collect();
        embedded.sort();
        assert_eq!(names, embedded);
        let keep = schema_statements(SCHEMA, "hospital", None);
        assert!(keep[0].contains(SCHEMA_RF));
    }

    #[test]
    fn ttls_round_up_to_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(300)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(60)), 60);
        assert_eq!(ttl_secs(Duration::ZERO), 1);
    }

    #[test]
    fn dates_are_cql_dates() {
        assert_eq!(cql_date(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).0, 1 << 31);
        assert_eq!(cql_date(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()).0, (1 << 31) + 1);
    }
}
