//! Load tests for the hospital platform: the release storm (放号) against the hospital server and
//! against the conventional designs a hospital would otherwise build (PostgreSQL, Redis + Lua),
//! with the same generator, in the same run; and the chat (`chat`) against a Node.js relay. See
//! `docs/benchmarks.md`.

pub mod chat;
pub mod http1;
pub mod load;
pub mod peers;
pub mod procs;
pub mod report;
pub mod storm;
