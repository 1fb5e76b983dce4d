//! Pure types and rules of the hospital platform. Nothing here does I/O: every type validates
//! on construction, so code that holds one may trust it (`Phone::parse`, `IdCardNo::parse`, ...).

pub mod access;
pub mod account;
pub mod analytics;
pub mod announcement;
pub mod appointment;
pub mod article;
pub mod audit;
pub mod average;
pub mod billing;
pub mod booking;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod exam;
pub mod id_card;
pub mod ids;
pub mod import;
pub mod income;
pub mod insured;
pub mod jobs;
pub mod ledger;
pub mod live;
pub mod message;
pub mod money;
pub mod notify;
pub mod order;
pub mod phone;
pub mod privacy;
pub mod queue;
pub mod reconcile;
pub mod report;
pub mod schedule;
pub mod search;
pub mod text;
pub mod time;
pub mod timestamp;
pub mod visit;

pub use access::{Permission, RoleName};
pub use account::{Email, Gender, Profile, Role};
pub use error::ValidationError;
pub use id_card::IdCardNo;
pub use ids::*;
pub use money::Fen;
pub use phone::Phone;
