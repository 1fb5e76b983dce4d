//! Patched in (vendor/kassandra/PATCHES.md): SELECT, INSERT, UPDATE and DELETE on user keyspaces,
//! with the CQL the hospital's ScyllaDB backend writes and kassandra 0.14 did not read: range and
//! multi-column relations, `token()`, `LIMIT ?`, literals among bind markers, lightweight
//! transactions (`IF NOT EXISTS`, `IF EXISTS`, `IF col = ?`) answered with ScyllaDB's `[applied]`
//! row (a conditional batch: all or nothing), `USING TTL`, `TTL()`, write timestamps (last write
//! wins per cell), counters, static columns and descending clustering order.
//!
//! The server runs one statement at a time, so a conditional statement's read and write are
//! atomic here without Paxos. System keyspaces keep kassandra's own planner.

mod exec;
mod parse;

use serde::{Deserialize, Serialize};

pub use exec::{check, execute, is_conditional, prepare};
pub use parse::parse;

/// One data statement on a user table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    pub keyspace: String,
    pub table: String,
    pub kind: Kind,
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.kind {
            Kind::Select { .. } => "SELECT",
            Kind::Insert { .. } => "INSERT",
            Kind::Update { .. } => "UPDATE",
            Kind::Delete { .. } => "DELETE",
        };
        write!(f, "{verb} {}.{}", self.keyspace, self.table)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Kind {
    Select {
        /// Empty: `*`.
        selectors: Vec<Selector>,
        relations: Vec<Relation>,
        limit: Option<Term>,
    },
    Insert {
        columns: Vec<String>,
        values: Vec<Term>,
        condition: Condition,
        ttl: Option<Term>,
    },
    Update {
        ttl: Option<Term>,
        assignments: Vec<Assignment>,
        relations: Vec<Relation>,
        condition: Condition,
    },
    Delete {
        /// Empty: the whole row (or partition).
        columns: Vec<String>,
        relations: Vec<Relation>,
        condition: Condition,
    },
}

/// A bind marker or a literal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Term {
    Marker,
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Uuid(uuid::Uuid),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Selector {
    Column(String),
    Ttl(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    Column(String),
    /// `(a, b, c) < (?, ?, ?)`
    Tuple(Vec<String>),
    /// `token(a, b) > token(?, ?)`
    Token(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    pub target: Target,
    pub op: Operator,
    /// One per column of the target.
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    None,
    NotExists,
    Exists,
    /// `IF a = ? AND b = ?`
    Columns(Vec<(String, Term)>),
}

/// `col = term`, or `col = col + term` on a counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub column: String,
    pub term: Term,
    pub add: bool,
}
