//! End-to-end tests of the `hospital` binary: real processes, real HTTP, real Redis, no mocks.
//! One test binary (modules below) so the build stays small; every test that starts a server has
//! its own port and data directory, so they run in parallel.

mod harness;

mod admin_console;
mod admin_import;
mod analytics;
mod announcements;
mod audit;
mod auth;
mod backoffice;
mod bad_input;
mod balance;
mod booking_flow;
mod browser;
mod catalogue;
mod catalogue_admin;
mod catalogue_console;
mod chat;
mod chat_desk;
mod chat_images;
mod chat_load;
mod consent;
mod content;
mod crash;
mod exams;
mod export;
mod fees;
mod files;
mod finance;
mod his;
mod http2;
mod insurance;
mod live;
mod memory;
mod openapi;
mod outbound;
mod patient_accounts;
mod permissions;
mod prometheus;
mod readme;
mod real_name;
mod realtime;
mod reconcile;
mod records;
mod reports;
mod restart;
#[cfg(feature = "scylla")]
mod scylla;
mod settings;
mod slow_clients;
mod storm;
mod supervision;
mod templates;
mod tls;
mod visits;
