//! Auditing staff actions from a handler: take `StaffAudit` instead of `StaffCaller`, build the
//! entry with `audit.event(action, target)` (the caller's staff id, roles and IP already in it),
//! add what it concerns and why, and `record` it before answering. `record` returns once the
//! entry is durable; if it cannot be written the handler gets an error (503) and must not
//! answer as if the action were done.
//!
//! The permission gate (`access`) already audits every staff request by its permission and
//! outcome; a handler records its own entry when it has more to say (which patient, why), and
//! that entry then replaces the gate's.
//!
//! ```ignore
//! // .routes(permit(Permission::RecordsRead, routes!(read_record)))
//! async fn read_record(audit: StaffAudit, ApiPath(id): ApiPath<RecordId>, ...) -> ApiResult<...> {
//!     let record = ...;
//!     audit.record(audit.event("record.read", Target::new("record", id)?)
//!         .concerning(record.account_id, Some(record.patient_id))
//!         .purpose(&q.purpose)?).await?;
//!     Ok(ApiJson(view(record)))
//! }
//! ```

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hospital_domain::audit::{Action, Actor, AuditEntry, AuditEvent, Target};
use hospital_store::AuditLog;
use std::net::IpAddr;

use crate::error::{ApiError, ApiResult};
use crate::extract::StaffCaller;
use crate::ratelimit::client_ip_of;
use crate::state::AppState;

/// A staff caller, where they call from, and the audit log.
pub struct StaffAudit {
    pub caller: StaffCaller,
    pub ip: Option<IpAddr>,
    log: AuditLog,
    /// Tells the gate this request wrote its own entry.
    mark: Option<crate::access::AuditMark>,
}

impl FromRequestParts<AppState> for StaffAudit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = StaffCaller::from_request_parts(parts, state).await?;
        let ip = client_ip_of(&parts.headers, &parts.extensions, state.config.trust_forwarded_for);
        let mark = parts.extensions.get::<crate::access::AuditMark>().cloned();
        Ok(StaffAudit { caller, ip, log: state.audit.clone(), mark })
    }
}

impl StaffAudit {
    /// An event by this caller, from this address, about `target` (outcome: success).
    pub fn event(&self, action: &str, target: Target) -> ApiResult<AuditEvent> {
        let actor = Actor::Staff { id: self.caller.staff_id, roles: self.caller.roles.clone() };
        Ok(AuditEvent::new(actor, Action::parse(action)?, target).from_ip(self.ip))
    }

    /// Appends the event to the audit log; returns the sealed entry once it is durable.
    pub async fn record(&self, event: AuditEvent) -> ApiResult<AuditEntry> {
        let entry = self.log.record(event).await?;
        if let Some(m) = &self.mark {
            m.set();
        }
        Ok(entry)
    }
}
