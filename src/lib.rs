//! The `hospital` binary's library half: configuration, wiring, seeding and the demo hospital.
//! `main.rs` stays thin; tests drive the same code through the built binary.

pub mod app;
pub mod config;
pub mod demo;
pub mod keys;
pub mod memory;
pub mod node_lease;
pub mod seed;
pub mod serve;
