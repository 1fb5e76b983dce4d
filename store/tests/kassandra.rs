//! The ScyllaDB backend's statements through the real `scylla` driver against `kassandra` (a CQL v4
//! server in memory, `hospital_testkit::kassandra`), in CI where no ScyllaDB can be installed:
//! `cargo test -p hospital-store --features scylla --test kassandra`.
//!
//! What it shows: the schema's tables are created as written; every statement written in
//! `store/src/scylla/*.rs` is prepared (so its bind markers' count and types are checked by the
//! driver) and runs at least once without an error, through the conformance suite where it can
//! and otherwise executed with typed values; every conformance part passes. A report is written
//! to `target/kassandra-report.md` (and printed): per part, the conditional (LWT) and TTL
//! statements it relied on.
//!
//! kassandra is patched for this (vendor/kassandra/PATCHES.md): it answers lightweight
//! transactions with ScyllaDB's `[applied]` row (conditional batches all or nothing), keeps
//! write timestamps (the later write wins), TTLs, counters, static columns and descending
//! clustering order. The booking fence of several nodes runs here too
//! (`a_doctor_fenced_on_scylla_refuses_an_owner_with_an_old_token`). What only a real cluster
//! can check: it runs one request at a time on one replica, so an LWT (or a conditional batch)
//! is atomic there without Paxos (contention between coordinators,
//! a Paxos round left in flight by a timeout, and `LOCAL_SERIAL` reads are not exercised);
//! re-runs a query for each page (the store here asks for pages of two rows, so every paged
//! listing's loop runs); orders `token()` by its own hash, not Murmur3; has no
//! consistency levels or schema agreement. `SCYLLA_URI` runs the whole suite on a cluster
//! (tests/conformance.rs `scylla_backend`).

#![cfg(feature = "scylla")]

use hospital_store::conformance;
use hospital_store::scylla::driver::value::CqlValue;
use hospital_store::scylla::{ScyllaStore, StatementTrace};
use hospital_store::{DataStore, EphemeralKv};
use hospital_testkit::kassandra::KassandraServer;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Part = Pin<Box<dyn Future<Output = ()> + Send>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_the_scylla_backend_runs_against_kassandra() {
    let server = KassandraServer::start();
    let trace = Arc::new(StatementTrace::default());
    // Two rows a page: every paged listing's loop runs more than once.
    let store = ScyllaStore::connect_with(&server.uri(), "hospital_ci", true)
        .await
        .expect("the driver connects to kassandra")
        .with_replication_factor(1)
        .with_page_size(2)
        .with_trace(trace.clone());
    let mut report = String::new();

    // The schema, as written.
    let mut schema_failures = Vec::new();
    for cql in store.schema_statements() {
        if let Err(e) = store.session().query_unpaged(cql.as_str(), ()).await {
            schema_failures.push(format!("{}: {e}", first_words(&cql)));
        }
    }
    let tables = store.schema_statements().iter().filter(|s| s.starts_with("CREATE TABLE")).count();
    writeln!(report, "## Schema\n\n{tables} tables, created as written").unwrap();
    writeln!(report, "\nrefused: {}", schema_failures.len()).unwrap();
    for f in &schema_failures {
        writeln!(report, "- {f}").unwrap();
    }

    // The conformance parts, each on its own task so one part's failed promise is reported and
    // the others still run.
    let ds: Arc<dyn DataStore> = Arc::new(store.clone());
    let kv: Arc<dyn EphemeralKv> = Arc::new(store.clone());
    let parts: Vec<(&str, Part)> = vec![
        ("accounts", Box::pin(conformance::accounts(ds.clone()))),
        ("patients", Box::pin(conformance::patients(ds.clone()))),
        ("persons", Box::pin(conformance::persons(ds.clone()))),
        ("staff", Box::pin(conformance::staff(ds.clone()))),
        ("catalogue", Box::pin(conformance::catalogue(ds.clone()))),
        ("booking", Box::pin(conformance::booking(ds.clone()))),
        ("outbox", Box::pin(conformance::outbox(ds.clone()))),
        ("backoffice", Box::pin(conformance::backoffice(ds.clone()))),
        ("payments", Box::pin(conformance::payments(ds.clone()))),
        ("exams", Box::pin(conformance::exams(ds.clone()))),
        ("queues", Box::pin(conformance::queues(ds.clone()))),
        ("notify", Box::pin(conformance::notify(ds.clone()))),
        ("audit", Box::pin(conformance::audit(ds.clone()))),
        ("chat", Box::pin(conformance::chat(ds.clone()))),
        ("chat_reference", Box::pin(conformance::chat_reference(ds.clone()))),
        ("records", Box::pin(conformance::records(ds.clone()))),
        ("jobs", Box::pin(conformance::jobs(ds.clone()))),
        ("vault", Box::pin(conformance::vault(Arc::new(store.clone())))),
        ("ephemeral_kv", Box::pin(conformance::ephemeral_kv(kv.clone()))),
        ("sessions", Box::pin(conformance::sessions(kv.clone()))),
    ];
    let total = parts.len();
    let mut passed = BTreeSet::new();
    writeln!(report, "\n## Conformance parts\n").unwrap();
    for (name, part) in parts {
        let before = trace.runs();
        let task = tokio::spawn(part);
        let abort = task.abort_handle();
        match tokio::time::timeout(std::time::Duration::from_secs(60), task).await {
            Ok(Ok(())) => {
                passed.insert(name);
                let relied = relied_on(&before, &trace.runs());
                writeln!(report, "- {name}: passed; {relied}").unwrap();
            }
            Ok(Err(e)) => writeln!(report, "- {name}: failed: {}", panic_text(e)).unwrap(),
            Err(_) => {
                abort.abort();
                writeln!(report, "- {name}: failed: no answer in 60 s").unwrap();
            }
        }
    }

    // Every statement in the source: those the suite did not reach are prepared and executed
    // once with typed values of their bind markers.
    let sources = source_statements();
    let ran_by_suite = trace.runs();
    for template in &sources {
        if ran_by_suite.contains_key(template) {
            continue;
        }
        let cql = template.replace("{ks}", store.keyspace());
        let outcome = match store.session().prepare(cql.as_str()).await {
            Ok(prepared) => {
                let values: Vec<CqlValue> =
                    prepared.get_variable_col_specs().iter().map(|c| sample_value(c.typ())).collect();
                store.session().execute_unpaged(&prepared, values).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("prepare: {e}")),
        };
        trace.note(store.keyspace(), &cql, outcome.err());
    }
    let runs = trace.runs();
    let missing: Vec<&String> = sources.iter().filter(|t| !runs.contains_key(*t)).collect();
    let refused: BTreeMap<&String, &String> = runs
        .iter()
        .filter(|(t, r)| sources.contains(*t) && r.ok == 0)
        .map(|(t, r)| (t, r.first_error.as_ref().expect("a failed run keeps its error")))
        .collect();
    writeln!(
        report,
        "\n## Statements\n\n{} in the source; {} ran through the conformance suite, {} on their own; \
         {} ran at least once without an error; refused by kassandra: {}",
        sources.len(),
        sources.iter().filter(|t| ran_by_suite.contains_key(*t)).count(),
        sources.iter().filter(|t| !ran_by_suite.contains_key(*t)).count(),
        sources.len() - refused.len(),
        refused.len()
    )
    .unwrap();
    let mut by_reason = BTreeMap::<&str, usize>::new();
    for e in refused.values() {
        *by_reason.entry(reason(e)).or_default() += 1;
    }
    for (r, n) in &by_reason {
        writeln!(report, "- {n}: {r}").unwrap();
    }
    writeln!(report, "\nEach refused statement and the server's first answer:\n").unwrap();
    for (t, e) in &refused {
        writeln!(report, "- `{t}`\n  {}", one_line(e)).unwrap();
    }
    println!("{report}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/kassandra-report.md");
    std::fs::write(path, &report).expect("write the report");

    assert!(sources.len() > 200, "the statements were found in the source: {}", sources.len());
    assert!(missing.is_empty(), "every statement ran at least once: {missing:#?}");
    assert!(schema_failures.is_empty(), "kassandra refused part of the schema: {schema_failures:#?}");
    assert!(refused.is_empty(), "every statement runs without an error\n{report}");
    assert_eq!(passed.len(), total, "every conformance part passes on kassandra\n{report}");
}

/// What a part ran that only a cluster checks fully: its conditional statements (Paxos there,
/// one request at a time here) and its TTL statements, by the trace's counts before and after.
fn relied_on(
    before: &BTreeMap<String, hospital_store::scylla::StatementRuns>,
    after: &BTreeMap<String, hospital_store::scylla::StatementRuns>,
) -> String {
    let ran: Vec<&String> =
        after.iter().filter(|(t, r)| before.get(*t).map_or(0, |b| b.ok) < r.ok).map(|(t, _)| t).collect();
    let lwt = ran.iter().filter(|t| t.contains(" IF ")).count();
    let ttl = ran.iter().filter(|t| t.contains("USING TTL") || t.contains("TTL(")).count();
    format!("{} statements, {lwt} conditional (LWT), {ttl} with a TTL", ran.len())
}

/// The CQL kassandra was patched to answer (vendor/kassandra/PATCHES.md), each as ScyllaDB does,
/// through the driver: a conditional write's `[applied]` row with the old values, TTL expiry and
/// `TTL()`, descending clustering order with a tuple relation and `LIMIT ?`, a static column,
/// counters, literals among bind markers, and a syntax error for a clause it does not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kassandra_answers_the_patched_cql_as_scylladb_does() {
    use hospital_store::scylla::driver::client::session::Session;
    use hospital_store::scylla::driver::value::{Counter, Row};
    let server = KassandraServer::start();
    let store = ScyllaStore::connect_with(&server.uri(), "p", true).await.unwrap();
    let s: &Session = store.session();
    for ddl in [
        "CREATE KEYSPACE IF NOT EXISTS p WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE p.kv (k text PRIMARY KEY, v text, n bigint)",
        "CREATE TABLE p.log (part text, at bigint, seq int, version bigint STATIC, body text, \
         PRIMARY KEY ((part), at, seq)) WITH CLUSTERING ORDER BY (at DESC, seq DESC)",
        "CREATE TABLE p.hits (day text, dim tinyint, n counter, PRIMARY KEY ((day), dim))",
    ] {
        s.query_unpaged(ddl, ()).await.unwrap();
    }
    async fn rows(
        s: &Session,
        cql: &str,
        values: impl hospital_store::scylla::driver::serialize::row::SerializeRow,
    ) -> Vec<Vec<Option<CqlValue>>> {
        let r = s.query_unpaged(cql, values).await.unwrap().into_rows_result().unwrap();
        r.rows::<Row>().unwrap().map(|r| r.unwrap().columns).collect()
    }
    let text = |x: &str| Some(CqlValue::Text(x.into()));

    // A conditional insert: applied once; the second answers the row that is there.
    let first = rows(s, "INSERT INTO p.kv (k, v, n) VALUES (?, ?, 0) IF NOT EXISTS", ("a", "one")).await;
    assert_eq!(first[0][0], Some(CqlValue::Boolean(true)));
    let second = rows(s, "INSERT INTO p.kv (k, v, n) VALUES (?, ?, 0) IF NOT EXISTS", ("a", "two")).await;
    assert_eq!(second[0][0], Some(CqlValue::Boolean(false)));
    assert!(second[0].contains(&text("one")), "the old row comes back: {second:?}");
    // A compare-and-set: refused on a stale value (the current one comes back), applied on the right one.
    let stale = rows(s, "UPDATE p.kv SET v = ? WHERE k = ? IF v = ?", ("three", "a", "two")).await;
    assert_eq!(stale[0], vec![Some(CqlValue::Boolean(false)), text("one")]);
    let cas = rows(s, "UPDATE p.kv SET v = ? WHERE k = ? IF v = ?", ("three", "a", "one")).await;
    assert_eq!(cas[0][0], Some(CqlValue::Boolean(true)));
    assert_eq!(
        rows(s, "SELECT v, n FROM p.kv WHERE k = ?", ("a",)).await,
        vec![vec![text("three"), Some(CqlValue::BigInt(0))]]
    );

    // TTL: counted down by TTL(), gone once it ends.
    s.query_unpaged("INSERT INTO p.kv (k, v) VALUES (?, ?) USING TTL ?", ("t", "brief", 1i32)).await.unwrap();
    assert_eq!(
        rows(s, "SELECT v, TTL(v) FROM p.kv WHERE k = ?", ("t",)).await,
        vec![vec![text("brief"), Some(CqlValue::Int(1))]]
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(rows(s, "SELECT v FROM p.kv WHERE k = ?", ("t",)).await.is_empty(), "the row expired with its TTL");
    let again = rows(s, "INSERT INTO p.kv (k, v) VALUES (?, ?) IF NOT EXISTS", ("t", "anew")).await;
    assert_eq!(again[0][0], Some(CqlValue::Boolean(true)), "an expired row does not block a conditional insert");

    // Descending order, a tuple relation, LIMIT ?, and a static column shared by the partition.
    for (at, seq) in [(1i64, 1i32), (2, 1), (2, 2), (3, 1)] {
        s.query_unpaged(
            "INSERT INTO p.log (part, at, seq, body) VALUES ('x', ?, ?, ?)",
            (at, seq, format!("{at}.{seq}")),
        )
        .await
        .unwrap();
    }
    let claim = rows(s, "UPDATE p.log SET version = ? WHERE part = ? IF version = null", (1i64, "x")).await;
    assert_eq!(claim[0][0], Some(CqlValue::Boolean(true)));
    let page = rows(
        s,
        "SELECT body, version FROM p.log WHERE part = ? AND (at, seq) < (?, ?) LIMIT ?",
        ("x", 3i64, 1i32, 2i32),
    )
    .await;
    assert_eq!(page, vec![vec![text("2.2"), Some(CqlValue::BigInt(1))], vec![text("2.1"), Some(CqlValue::BigInt(1))]]);
    let range = rows(s, "SELECT body FROM p.log WHERE part = ? AND at >= ? AND at <= ?", ("x", 2i64, 3i64)).await;
    assert_eq!(range, vec![vec![text("3.1")], vec![text("2.2")], vec![text("2.1")]]);

    // Pages: two rows each, the paging state carrying where the next starts.
    {
        use hospital_store::scylla::driver::response::{PagingState, PagingStateResponse};
        use hospital_store::scylla::driver::statement::unprepared::Statement;
        let mut stmt = Statement::new("SELECT body FROM p.log WHERE part = ?");
        stmt.set_page_size(2);
        let (mut pages, mut paging) = (Vec::new(), PagingState::start());
        loop {
            let (res, next) = s.query_single_page(stmt.clone(), ("x",), paging).await.unwrap();
            let rows = res.into_rows_result().unwrap();
            pages.push(rows.rows::<(String,)>().unwrap().map(|r| r.unwrap().0).collect::<Vec<_>>());
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => break,
            }
        }
        assert_eq!(pages, vec![vec!["3.1", "2.2"], vec!["2.1", "1.1"]], "two pages in clustering order");
    }

    // Counters on a tinyint-keyed table.
    for d in [2i64, 3] {
        s.query_unpaged("UPDATE p.hits SET n = n + ? WHERE day = ? AND dim = ?", (Counter(d), "d", 7i8)).await.unwrap();
    }
    assert_eq!(
        rows(s, "SELECT dim, n FROM p.hits WHERE day = ?", ("d",)).await,
        vec![vec![Some(CqlValue::TinyInt(7)), Some(CqlValue::Counter(Counter(5)))]]
    );

    // A conditional batch (the booking fence): every condition checked before anything runs;
    // refused, nothing of it is written and the answer says what the condition found.
    {
        use hospital_store::scylla::driver::statement::batch::{Batch, BatchType};
        let mut b = Batch::new(BatchType::Unlogged);
        b.append_statement("UPDATE p.log SET version = ? WHERE part = ? IF version = ?");
        b.append_statement("INSERT INTO p.log (part, at, seq, body) VALUES (?, ?, ?, ?)");
        let stale = s.batch(&b, ((2i64, "x", 0i64), ("x", 9i64, 1i32, "9.1"))).await.unwrap();
        let stale: Vec<Vec<Option<CqlValue>>> =
            stale.into_rows_result().unwrap().rows::<Row>().unwrap().map(|r| r.unwrap().columns).collect();
        assert_eq!(stale[0], vec![Some(CqlValue::Boolean(false)), Some(CqlValue::BigInt(1))]);
        assert!(rows(s, "SELECT body FROM p.log WHERE part = ? AND at = ?", ("x", 9i64)).await.is_empty());
        let ok = s.batch(&b, ((2i64, "x", 1i64), ("x", 9i64, 1i32, "9.1"))).await.unwrap();
        let ok = ok.into_rows_result().unwrap().rows::<Row>().unwrap().next().unwrap().unwrap().columns;
        assert_eq!(ok[0], Some(CqlValue::Boolean(true)));
        assert_eq!(
            rows(s, "SELECT body, version FROM p.log WHERE part = ? AND at = ?", ("x", 9i64)).await,
            vec![vec![text("9.1"), Some(CqlValue::BigInt(2))]]
        );
    }

    // Write timestamps: the later one wins, whatever order the writes arrive in.
    {
        use hospital_store::scylla::driver::statement::unprepared::Statement;
        for (ts, v) in [(2_000i64, "second"), (1_000, "first, late"), (3_000, "third")] {
            let mut st = Statement::new("INSERT INTO p.kv (k, v) VALUES ('w', ?)");
            st.set_timestamp(Some(ts));
            s.query_unpaged(st, (v,)).await.unwrap();
            let want = if ts == 1_000 { "second" } else { v };
            assert_eq!(rows(s, "SELECT v FROM p.kv WHERE k = 'w'", ()).await, vec![vec![text(want)]], "after {ts}");
        }
    }

    // A clause the patched grammar does not read is a syntax error, not silently dropped.
    let e = s.query_unpaged("SELECT v FROM p.kv WHERE k = 'a' ALLOW FILTERING", ()).await.unwrap_err();
    assert!(e.to_string().contains("SyntaxError"), "{e}");
}

/// The node lease (one node runs a keyspace's actors): taken once, refused to another node with
/// the holder's name, renewed only by its holder, given up only by its holder, free again once
/// its TTL ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_holds_the_keyspace_until_it_lets_go_or_its_lease_runs_out() {
    use hospital_store::NodeLeases;
    use std::time::Duration;
    let server = KassandraServer::start();
    let store = ScyllaStore::connect_with(&server.uri(), "lease_ci", true).await.unwrap().with_replication_factor(1);
    store.create_schema().await.unwrap();
    let ttl = Duration::from_secs(1);
    assert_eq!(store.claim_node("a", ttl).await.unwrap(), None, "a takes it");
    assert_eq!(store.claim_node("b", ttl).await.unwrap(), Some("a".to_string()), "b is told a has it");
    assert_eq!(store.claim_node("a", ttl).await.unwrap(), None, "a again: renewed, still a's");
    assert!(store.renew_node("a", ttl).await.unwrap());
    assert!(!store.renew_node("b", ttl).await.unwrap(), "only the holder renews");
    store.release_node("b").await.unwrap();
    assert_eq!(store.claim_node("b", ttl).await.unwrap(), Some("a".to_string()), "b cannot give up a's lease");
    store.release_node("a").await.unwrap();
    assert_eq!(store.claim_node("b", ttl).await.unwrap(), None, "given up: b takes it at once");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!store.renew_node("b", ttl).await.unwrap(), "b's lease ran out");
    assert_eq!(store.claim_node("a", ttl).await.unwrap(), None, "and a takes it back");
}

/// Two nodes' connections to one keyspace on `server`, its schema created.
async fn two_nodes(server: &KassandraServer, keyspace: &str) -> (ScyllaStore, ScyllaStore) {
    let connect =
        || async { ScyllaStore::connect_with(&server.uri(), keyspace, true).await.unwrap().with_replication_factor(1) };
    let (a, b) = (connect().await, connect().await);
    a.create_schema().await.unwrap();
    (a, b)
}

/// The booking fence on ScyllaDB (several nodes, ARCHITECTURE.md): node A claims a doctor and
/// writes, node B takes over with a newer token and changes A's booking; A, waking up with its
/// old token, cannot write any more: nothing of its write lands, B's stands. The leases are
/// Redis' (store/tests/fencing.rs runs them with the embedded store); here the tokens are given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_fenced_on_scylla_refuses_an_owner_with_an_old_token() {
    use chrono::{NaiveDate, Utc};
    use hospital_domain::appointment::{AppointmentStatus, CancelReason};
    use hospital_domain::{AccountId, DoctorId};
    use hospital_store::conformance::{sample_hold, stored_sample_book};
    use hospital_store::{schedule_resource, BookingStore, BookingWrite, Conflict, Fence, StoreError};
    let server = KassandraServer::start();
    let (node_a, node_b) = two_nodes(&server, "fence_ci").await;

    let doctor = DoctorId::new();
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let mut book = stored_sample_book(&node_a, doctor, day, 4).await;
    let fence = |token| Some(Fence::schedule(doctor, token));

    // A claims the doctor (a fence alone is a write); the claimed book is still empty.
    node_a.apply_booking(BookingWrite { fence: fence(1), ..Default::default() }).await.unwrap();
    assert!(node_a.appointments_of_doctor(doctor, day, day).await.unwrap().is_empty(), "the fence is no booking");
    let (held, order) = sample_hold(&mut book, 0, AccountId::new(), "person-1");
    let w =
        BookingWrite { appointments: vec![held.clone()], orders: vec![order], fence: fence(1), ..Default::default() };
    node_a.apply_booking(w).await.unwrap();

    // B takes over with token 2 (its claim moves the fence from A's 1) and cancels A's hold.
    node_b.apply_booking(BookingWrite { fence: fence(2), ..Default::default() }).await.unwrap();
    let cancelled = book.cancel(held.id, Utc::now(), CancelReason::Patient).unwrap();
    let w = BookingWrite { appointments: vec![cancelled.clone()], fence: fence(2), ..Default::default() };
    node_b.apply_booking(w).await.unwrap();

    // A wakes up: its write (A's hold again, and a second hold) is refused as a whole.
    let (stale_hold, stale_order) = sample_hold(&mut book, 0, AccountId::new(), "person-2");
    let w = BookingWrite {
        appointments: vec![held.clone(), stale_hold.clone()],
        orders: vec![stale_order.clone()],
        fence: fence(1),
        ..Default::default()
    };
    let r = node_a.apply_booking(w).await;
    assert!(matches!(r, Err(StoreError::Conflict(Conflict::StaleFence))), "{r:?}");
    for store in [&node_a, &node_b] {
        assert_eq!(store.appointment(held.id).await.unwrap().unwrap().status, AppointmentStatus::Cancelled);
        let listed = store.appointments_of_doctor(doctor, day, day).await.unwrap();
        assert_eq!(listed.len(), 1, "nothing of the refused write is in the doctor's book: {listed:?}");
        assert_eq!(listed[0].status, AppointmentStatus::Cancelled);
        assert!(store.appointment(stale_hold.id).await.unwrap().is_none());
        assert!(store.order(stale_order.id).await.unwrap().is_none());
    }
    // A claim with an old token is refused too: the fence never goes back.
    let r = node_a.apply_booking(BookingWrite { fence: fence(1), ..Default::default() }).await;
    assert!(matches!(r, Err(StoreError::Conflict(Conflict::StaleFence))), "{r:?}");

    // B goes on; C takes over (token 5: tokens need not be consecutive) and B is refused.
    let (next, next_order) = sample_hold(&mut book, 0, AccountId::new(), "person-3");
    let w = BookingWrite {
        appointments: vec![next.clone()],
        orders: vec![next_order],
        fence: fence(2),
        ..Default::default()
    };
    node_b.apply_booking(w).await.unwrap();
    assert_eq!(node_a.appointment(next.id).await.unwrap().unwrap().status, AppointmentStatus::Held);
    node_a.apply_booking(BookingWrite { fence: fence(5), ..Default::default() }).await.unwrap();
    let w = BookingWrite { appointments: vec![next.clone()], fence: fence(2), ..Default::default() };
    assert!(matches!(node_b.apply_booking(w).await, Err(StoreError::Conflict(Conflict::StaleFence))));

    // A write begun past its lease's deadline is refused before anything is sent (a next owner
    // may have claimed, and the write's timestamp could fall after its own).
    let (late, late_order) = sample_hold(&mut book, 0, AccountId::new(), "person-4");
    let now_us = Utc::now().timestamp_micros();
    let lapsed = Some(Fence { resource: schedule_resource(doctor), token: 5, until_us: Some(now_us - 1_000) });
    let w = BookingWrite {
        appointments: vec![late.clone()],
        orders: vec![late_order.clone()],
        fence: lapsed,
        ..Default::default()
    };
    let r = node_a.apply_booking(w.clone()).await;
    assert!(matches!(r, Err(StoreError::Conflict(Conflict::StaleFence))), "{r:?}");
    assert!(
        node_a.appointment(late.id).await.unwrap().is_none() && node_a.order(late_order.id).await.unwrap().is_none()
    );
    let in_time = Some(Fence { resource: schedule_resource(doctor), token: 5, until_us: Some(now_us + 60_000_000) });
    node_a.apply_booking(BookingWrite { fence: in_time, ..w }).await.unwrap();
    assert_eq!(node_a.appointment(late.id).await.unwrap().unwrap().status, AppointmentStatus::Held);

    // Only a doctor's schedule is fenced on ScyllaDB; anything else is refused, not unfenced.
    let other = BookingWrite {
        fence: Some(Fence { resource: "queue:x".into(), token: 1, until_us: None }),
        ..Default::default()
    };
    let r = node_a.apply_booking(other).await;
    assert!(matches!(&r, Err(StoreError::Scylla(m)) if m.contains("queue:x")), "{r:?}");
    // A booking write under an order's fence is refused by name too (each kind fences its own).
    let wrong = BookingWrite { fence: Some(Fence::payment(hospital_domain::OrderId::new(), 1)), ..Default::default() };
    let r = node_a.apply_booking(wrong).await;
    assert!(matches!(&r, Err(StoreError::Scylla(m)) if m.contains("order")), "{r:?}");
}

/// The other owned actors' fences on ScyllaDB: `conformance::{payment,queue,conversation}_fence`
/// (the embedded store's run is in fencing.rs) through two nodes' connections, each fence in the
/// row its actor loads (the order's, the queue's, the conversation's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_a_queue_and_a_conversation_fenced_on_scylla_refuse_an_owner_with_an_old_token() {
    use hospital_domain::queue::ClinicQueue;
    use hospital_domain::{DoctorId, SessionId};
    use hospital_store::conformance::{conversation_fence, payment_fence, queue_fence};
    use hospital_store::{ChatStore, ChatWrite, DataStore, Fence, PaymentStore, PaymentWrite, QueueStore};
    let server = KassandraServer::start();
    let (node_a, node_b) = two_nodes(&server, "owned_fence_ci").await;
    payment_fence(&node_a, &node_b).await;
    queue_fence(&node_a, &node_b).await;
    conversation_fence(&node_a, &node_b).await;

    // Each kind's write under another kind's fence (or another session's) is refused by name,
    // not written unfenced.
    let doctor = DoctorId::new();
    let wrong = PaymentWrite { fence: Some(Fence::schedule(doctor, 1)), ..Default::default() };
    named(node_a.apply_payment(wrong).await.map(|_| ()), "doctor");
    let (session, other) = (SessionId::new(), SessionId::new());
    let q = ClinicQueue::new(session, doctor);
    named(node_a.put_queue(session, doctor, &q, &[], Some(&Fence::queue(other, 1))).await, "session");
    let wrong = ChatWrite { fence: Some(Fence::queue(session, 1)), ..Default::default() };
    named(node_a.apply_chat(wrong).await, "session");
    named(
        node_a.claim_fence(&Fence { resource: "dispatcher:x".into(), token: 1, until_us: None }).await,
        "dispatcher:x",
    );
}

/// A ticket's, an exam's and a visit's fences on ScyllaDB: `conformance::{ticket,exam,visit}_fence`
/// (the embedded store's run is in fencing.rs), each fence in its own row; a visit's notes from
/// before it exists are checked against the visit's fence in a conditional batch of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_an_exam_and_a_visit_fenced_on_scylla_refuse_an_owner_with_an_old_token() {
    use hospital_domain::exam::{Exam, ExamKind};
    use hospital_domain::{AccountId, AppointmentId, PatientId};
    use hospital_store::conformance::{exam_fence, ticket_fence, visit_fence};
    use hospital_store::{ChatStore, ChatWrite, ExamRow, ExamStore, Fence, RecordStore};
    let server = KassandraServer::start();
    let (node_a, node_b) = two_nodes(&server, "more_fences_ci").await;
    ticket_fence(&node_a, &node_b).await;
    exam_fence(&node_a, &node_b).await;
    visit_fence(&node_a, &node_b).await;

    // Under another kind's fence (or another exam's), refused by name, not written unfenced.
    let exam = Exam::new(AccountId::new(), PatientId::new(), "血常规", ExamKind::Lab, chrono::Utc::now()).unwrap();
    let row = ExamRow::seal(&exam, None).unwrap();
    let other = hospital_domain::ExamId::new();
    named(node_a.put_exam(&row, &[], &[], Some(&Fence::exam(other, 1))).await, &other.to_string());
    let notes = hospital_store::AppointmentNotesRow {
        appointment_id: AppointmentId::new(),
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        sealed: "n".into(),
    };
    named(node_a.put_appointment_notes(&notes, Some(&Fence::exam(exam.id, 1))).await, "exam");
    let wrong = ChatWrite { fence: Some(Fence::exam(exam.id, 1)), ..Default::default() };
    named(node_a.apply_chat(wrong).await, "exam");
}

/// An account's fence on ScyllaDB (`conformance::account_fence`; the embedded store's run is in
/// fencing.rs): in the account's row, checked before the lookup keys, the patient and person
/// claims (lightweight transactions of their own) and the plain rows written at its timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_fenced_on_scylla_refuses_an_owner_with_an_old_token() {
    use hospital_store::conformance::account_fence;
    use hospital_store::{AccountStore, Fence, NotifyStore};
    let server = KassandraServer::start();
    let (node_a, node_b) = two_nodes(&server, "account_fence_ci").await;
    account_fence(&node_a, &node_b).await;

    // Under another account's fence (or another kind's), refused by name, not written unfenced.
    let account = hospital_store::conformance::sample_account();
    node_a.create_account(&account).await.unwrap();
    let other = hospital_domain::AccountId::new();
    named(node_a.update_account(&account, &[], Some(&Fence::account(other, 1))).await, &other.to_string());
    let prefs = hospital_domain::notify::NotificationPreferences::default();
    let exam = hospital_domain::ExamId::new();
    named(node_a.put_notification_preferences(account.id, &prefs, Some(&Fence::exam(exam, 1))).await, "exam");
}

/// A write refused by name (`what`) rather than written unfenced: a fence of another kind, or of
/// another id, is no fence for it.
fn named(r: hospital_store::Result<()>, what: &str) {
    assert!(matches!(&r, Err(hospital_store::StoreError::Scylla(m)) if m.contains(what)), "{r:?}");
}

/// Every CQL statement written in the backend's source: string literals naming `{ks}.`.
fn source_statements() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scylla");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("the backend's source") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for lit in string_literals(&src) {
            let upper = lit.trim_start().to_ascii_uppercase();
            if lit.contains("{ks}.") && ["SELECT", "INSERT", "UPDATE", "DELETE"].iter().any(|k| upper.starts_with(k)) {
                out.insert(lit);
            }
        }
    }
    out
}

/// The values of Rust string literals in `src` (no raw strings in the backend): escapes
/// resolved, a backslash-newline skipping the next line's leading whitespace, as rustc does.
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        if c == '\'' && prev != '\\' {
            // A char literal ('"' among them) or a lifetime: skip a char literal whole.
            let mut look = chars.clone();
            let first = look.next();
            let closes = match first {
                Some('\\') => {
                    look.next();
                    look.next() == Some('\'')
                }
                Some(_) => look.next() == Some('\''),
                None => false,
            };
            if closes {
                chars = look;
            }
            prev = c;
            continue;
        }
        if c != '"' {
            prev = c;
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('\n') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                    }
                    Some(other) => s.push(other),
                    None => break,
                },
                other => s.push(other),
            }
        }
        out.push(s);
        prev = '"';
    }
    out
}

/// A value of the column type, for executing a statement the suite did not reach.
fn sample_value(t: &hospital_store::scylla::driver::frame::response::result::ColumnType<'_>) -> CqlValue {
    use hospital_store::scylla::driver::frame::response::result::{ColumnType, NativeType};
    match t {
        ColumnType::Native(n) => match n {
            NativeType::Text | NativeType::Ascii => CqlValue::Text("x".into()),
            NativeType::Int => CqlValue::Int(1),
            NativeType::BigInt => CqlValue::BigInt(1),
            NativeType::SmallInt => CqlValue::SmallInt(1),
            NativeType::TinyInt => CqlValue::TinyInt(1),
            NativeType::Boolean => CqlValue::Boolean(false),
            NativeType::Blob => CqlValue::Blob(vec![1]),
            NativeType::Uuid => CqlValue::Uuid(uuid::Uuid::new_v4()),
            NativeType::Timeuuid => CqlValue::Timeuuid(uuid::uuid!("8e14e760-7250-11e6-8b77-86f30ca893d3").into()),
            NativeType::Timestamp => CqlValue::Timestamp(hospital_store::scylla::driver::value::CqlTimestamp(0)),
            NativeType::Date => CqlValue::Date(hospital_store::scylla::driver::value::CqlDate(1 << 31)),
            NativeType::Double => CqlValue::Double(1.0),
            NativeType::Float => CqlValue::Float(1.0),
            other => panic!("no sample value for {other:?}"),
        },
        other => panic!("no sample value for {other:?}"),
    }
}

/// Why kassandra refused a statement, in a word the report groups by.
fn reason(error: &str) -> &'static str {
    if error.contains("wrong column count") || error.contains("Failed to type check") {
        "the driver's type check against the prepared bind markers"
    } else if error.contains("not of Rows kind") || error.contains("[applied]") {
        "a conditional write's outcome"
    } else if error.contains("SyntaxError") || error.contains("Could not parse") || error.contains("line 1:") {
        "syntax kassandra does not read"
    } else {
        "other"
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => one_line(
            p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("?"),
        ),
        Err(e) => e.to_string(),
    }
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 300 {
        s.chars().take(300).collect::<String>() + "…"
    } else {
        s
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
}
