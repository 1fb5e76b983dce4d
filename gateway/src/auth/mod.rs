//! Authentication building blocks: tokens, password hashing, SMS codes, session issuing. The HTTP
//! handlers in `http::auth` are thin on top of these.

pub mod cache;
pub mod codes;
pub mod password;
pub mod session;
pub mod tokens;
