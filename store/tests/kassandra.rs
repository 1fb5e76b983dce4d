//! The ScyllaDB backend's statements through the real `scylla` driver against `kassandra` (a CQL v4
//! server in memory, `hospital_testkit::kassandra`), in CI where no ScyllaDB can be installed:
//! `cargo test -p hospital-store --features scylla --test kassandra`.
//!
//! What it shows: the schema's tables are created (in the dialect kassandra reads: the changes
//! are listed); every statement written in `store/src/scylla/*.rs` runs at least once, through
//! the conformance suite where it can and otherwise prepared and executed with typed values; the
//! conformance parts that pass there are listed. A report is written to
//! `target/kassandra-report.md` (and printed).
//!
//! What only a real cluster can check, because kassandra parses `IF` and `USING TTL` and ignores
//! them (no Paxos, no expiry), has one replica and no schema agreement: the lightweight
//! transactions' outcomes (uniqueness, caps, the kv's compare-and-set), TTL expiry, consistency
//! levels, and the conformance parts built on them. `SCYLLA_URI` runs the whole suite on one
//! (tests/conformance.rs `scylla_backend`).

#![cfg(feature = "scylla")]

use hospital_store::conformance;
use hospital_store::scylla::driver::client::session_builder::SessionBuilder;
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
    let session = SessionBuilder::new()
        .known_node(server.uri())
        .auto_await_schema_agreement(false)
        .fetch_schema_metadata(false)
        .build()
        .await
        .expect("the driver connects to kassandra");
    let trace = Arc::new(StatementTrace::default());
    let store =
        ScyllaStore::from_session(session, "hospital_ci").unwrap().with_replication_factor(1).with_trace(trace.clone());
    let mut report = String::new();

    // The schema, in kassandra's dialect.
    let mut schema_failures = Vec::new();
    let mut rewrites = BTreeMap::<&'static str, usize>::new();
    for stmt in store.schema_statements() {
        let (cql, changes) = kassandra_dialect(&stmt);
        for c in changes {
            *rewrites.entry(c).or_default() += 1;
        }
        if let Err(e) = store.session().query_unpaged(cql.as_str(), ()).await {
            schema_failures.push(format!("{}: {e}", first_words(&cql)));
        }
    }
    let tables = store.schema_statements().iter().filter(|s| s.starts_with("CREATE TABLE")).count();
    writeln!(report, "## Schema\n\n{tables} tables; rewritten for kassandra:").unwrap();
    for (change, n) in &rewrites {
        writeln!(report, "- {change}: {n} statement(s)").unwrap();
    }
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
    let mut passed = BTreeSet::new();
    writeln!(report, "\n## Conformance parts\n").unwrap();
    for (name, part) in parts {
        let task = tokio::spawn(part);
        let abort = task.abort_handle();
        match tokio::time::timeout(std::time::Duration::from_secs(60), task).await {
            Ok(Ok(())) => {
                passed.insert(name);
                writeln!(report, "- {name}: passed").unwrap();
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
    // Counter columns are the one thing in the schema kassandra cannot create (`todo!()` in its
    // engine): the analytics rollups' statements are then listed as refused.
    assert!(
        schema_failures.iter().all(|f| f.contains(".analytics_daily")),
        "kassandra refused part of the schema: {schema_failures:#?}"
    );
    for part in MUST_PASS {
        assert!(passed.contains(part), "the `{part}` conformance part passes on kassandra\n{report}");
    }
}

/// Conformance parts that need nothing kassandra lacks, and must keep passing there.
const MUST_PASS: &[&str] = &["exams", "queues"];

/// The statement rewritten into what kassandra 0.14 parses, and the names of the changes made.
/// Only the schema is rewritten; the backend's statements run as written.
fn kassandra_dialect(stmt: &str) -> (String, Vec<&'static str>) {
    let mut out = stmt.to_string();
    let mut changes = Vec::new();
    if let Some(i) = out.find(" WITH CLUSTERING ORDER BY") {
        if out.starts_with("CREATE TABLE") {
            out.truncate(i);
            changes.push("`WITH CLUSTERING ORDER BY` dropped (kassandra keeps ascending order)");
        }
    }
    if out.contains(" STATIC,") || out.contains(" static,") {
        out = out.replace(" STATIC,", ",").replace(" static,", ",");
        changes.push("`static` dropped (kassandra has no static columns)");
    }
    (out, changes)
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
    if error.contains("wrong column count") {
        "a bound `IF` condition (kassandra parses `IF` and drops it, with its bind markers)"
    } else if error.contains("not of Rows kind") || error.contains("[applied]") {
        "a conditional write's outcome (kassandra answers no `[applied]` row)"
    } else if error.contains("Table does not exist") {
        "kassandra answers `Table does not exist` to DELETE by key on a table it has"
    } else if error.contains("not yet implemented") || error.contains("not implemented") {
        "a column type kassandra does not implement (`todo!()` in its engine: counter, tinyint, smallint)"
    } else if error.contains("Could not parse") || error.contains("Parsing Error") {
        "syntax kassandra does not parse (`USING TTL ?`, `TTL()`, counter `n = n + ?`)"
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
