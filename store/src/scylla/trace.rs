//! A record of which statements the backend ran and how each went, for the test that runs the
//! backend against a CQL server that is not ScyllaDB (`kassandra`): it proves every statement in
//! the source ran at least once and lists the ones that server could not take. Off (None) in
//! production: the store then pays one branch per statement.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// How one statement went, over every time it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementRuns {
    pub ok: u32,
    pub failed: u32,
    /// The first error the server gave for it.
    pub first_error: Option<String>,
}

/// Statements by their template text (`{ks}` in place of the keyspace, as written in the source).
#[derive(Debug, Default)]
pub struct StatementTrace {
    runs: Mutex<BTreeMap<String, StatementRuns>>,
}

impl StatementTrace {
    /// Notes one run of `cql` (the statement as sent, keyspace included).
    pub fn note(&self, keyspace: &str, cql: &str, error: Option<String>) {
        let template = cql.replace(&format!("{keyspace}."), "{ks}.");
        let mut runs = self.runs.lock().expect("trace lock");
        let r = runs.entry(template).or_default();
        match error {
            None => r.ok += 1,
            Some(e) => {
                r.failed += 1;
                r.first_error.get_or_insert(e);
            }
        }
    }

    /// Every statement seen so far and how it went.
    pub fn runs(&self) -> BTreeMap<String, StatementRuns> {
        self.runs.lock().expect("trace lock").clone()
    }
}
