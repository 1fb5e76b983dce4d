//! The binary on the ScyllaDB backend (feature `scylla`): durable data, sessions and codes on a
//! CQL server instead of the embedded store, here kassandra (a CQL v4 server in memory, run by
//! this test: `hospital_testkit::kassandra`, patched to answer what the backend writes). The
//! store's conformance suite checks each statement (`store/tests/kassandra.rs`); this checks the
//! wiring: the schema made at start-up, the demo hospital seeded, a login, a patient, a hold, a
//! WeChat Pay notification confirming it, and all of it still there after `kill -9`.
//!
//! Run by `./scripts/test.sh` (`cargo test -p hospital --features scylla --test e2e scylla::`).

use hospital_testkit::kassandra::KassandraServer;

use crate::booking_flow::{
    ahead, appointment, appointment_becomes, book, book_ok, booking_opts, conflict, create_session, doctors, order,
    pay, person, remaining, staff,
};
use crate::harness::{Opts, TestServer};

fn on(cql: &KassandraServer) -> Opts {
    booking_opts()
        .env("HOSPITAL_SCYLLA_URI", cql.uri())
        .env("HOSPITAL_SCYLLA_KEYSPACE", "e2e")
        .env("HOSPITAL_SCYLLA_CREATE_SCHEMA", 1)
        .env("HOSPITAL_SCYLLA_TEST_SERVER", true)
}

#[tokio::test]
async fn the_platform_books_and_pays_on_the_scylladb_backend_and_keeps_it_across_kill_9() {
    let cql = KassandraServer::start();
    let s = TestServer::start(on(&cql)).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    assert!(!docs.is_empty(), "the demo hospital was seeded into ScyllaDB");
    let date = ahead(20);
    let (session, slots) = create_session(&s, &admin, &docs[0], date, 30, 3, None).await;

    let a = person(&s, 1).await;
    let held = book_ok(&s, &a, &slots[0]).await;
    let (a_appt, a_order) =
        (held["appointment"]["id"].as_str().unwrap().to_string(), held["order"]["id"].as_str().unwrap().to_string());
    assert_eq!(held["appointment"]["place"], 1, "{held}");
    pay(&s, &a, &a_order).await;
    let confirmed = appointment_becomes(&s, &a, &a_appt, "confirmed").await;
    let slip = confirmed["slip_no"].as_str().expect("a slip once paid").to_string();
    let b = person(&s, 2).await;
    let b_held = book_ok(&s, &b, &slots[0]).await;
    assert_eq!(b_held["appointment"]["place"], 2, "{b_held}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![1]);

    // kill -9: the rows, the sessions (kv_entries) and the actors' state come back from ScyllaDB.
    let dir = s.kill_9();
    let s = TestServer::start(on(&cql).data_dir(dir)).await;
    let again = appointment(&s, &a, &a_appt).await;
    assert_eq!(again["status"], "confirmed", "{again}");
    assert_eq!(again["slip_no"], slip.as_str(), "{again}");
    assert_eq!(order(&s, &a, &a_order).await["status"], "paid");
    let b_again = appointment(&s, &b, b_held["appointment"]["id"].as_str().unwrap()).await;
    assert_eq!(b_again["status"], "held", "{b_again}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![1], "the schedule actor reloaded both places");

    let c = person(&s, 3).await;
    assert_eq!(book_ok(&s, &c, &slots[0]).await["appointment"]["place"], 3);
    let d = person(&s, 4).await;
    conflict(book(&s, &d, &slots[0]).await, "sold_out").await;
    let list = s.get_json("/api/v1/appointments", Some(&c.token)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // The rows are on the CQL server, not in the data directory's embedded store.
    let id: uuid::Uuid = a_appt.parse().unwrap();
    let row = cql_session(&cql)
        .await
        .query_unpaged("SELECT body FROM e2e.appointments WHERE appointment_id = ?", (id,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .maybe_first_row::<(String,)>()
        .unwrap();
    assert!(row.is_some_and(|(body,)| body.contains(&slip)), "the confirmed appointment is in ScyllaDB's table");
}

async fn cql_session(cql: &KassandraServer) -> hospital_store::scylla::driver::client::session::Session {
    hospital_store::scylla::driver::client::session_builder::SessionBuilder::new()
        .known_node(cql.uri())
        .auto_await_schema_agreement(false)
        .fetch_schema_metadata(false)
        .build()
        .await
        .expect("the driver connects to kassandra")
}
