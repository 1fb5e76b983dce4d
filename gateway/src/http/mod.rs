//! The REST routers, one module per area, each exporting `router()`; `crate::router` merges them.

pub mod access_history;
pub mod admin;
pub mod audit_log;
pub mod auth;
pub mod booking;
pub mod catalog;
pub mod catalog_admin;
pub mod chat;
pub mod chat_agent;
pub mod chat_canned;
pub mod chat_context;
pub mod chat_faq;
pub mod chat_images;
pub mod chat_supervise;
pub mod chat_tickets;
pub mod exams;
pub mod export;
pub mod feedback;
pub mod fees;
pub mod files;
pub mod finance;
pub mod me;
pub mod messages;
pub mod ops;
pub mod patients;
pub mod payments;
pub mod queue;
pub mod records;
pub mod reports;
pub mod roles;
/// The sandboxes' own routes (`/sandbox/...`): feature `sandbox`.
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod staff;
pub mod views;
pub mod visits;
