//! Seeding: the demo hospital goes into an empty store; on every start the demo schedule is
//! topped up so the next 14 days always have sessions. Sessions already stored are never
//! overwritten (staff may have changed or stopped them).

use chrono::Utc;
use hospital_domain::time::HospitalZone;
use hospital_domain::Role;
use hospital_gateway::http::staff::{create, CreateStaff};
use hospital_store::Stores;

use crate::demo::demo_hospital;

/// Demo staff accounts, created in sandbox mode only: (username, name, password, roles).
pub const DEMO_STAFF: &[(&str, &str, &str, &[Role])] = &[
    ("admin", "系统管理员", "admin-demo-2026", &[Role::Admin]),
    ("scheduler", "排班专员", "scheduler-demo-2026", &[Role::Scheduler]),
    ("nurse", "分诊护士", "nurse-demo-2026", &[Role::Nurse]),
    ("finance", "财务专员", "finance-demo-2026", &[Role::Finance]),
];

pub async fn seed_if_empty(stores: &Stores, zone: HospitalZone, sandbox: bool) -> anyhow::Result<()> {
    let data = stores.data.as_ref();
    let today = zone.local_date(Utc::now());
    let demo = demo_hospital(today, zone);
    if data.hospital().await?.is_none() {
        data.put_departments(&demo.departments).await?;
        data.put_doctors(&demo.doctors).await?;
        // Written last: its presence marks the catalogue as seeded.
        data.put_hospital(&demo.hospital).await?;
        tracing::info!(departments = demo.departments.len(), doctors = demo.doctors.len(), "seeded the demo hospital");
    }
    let mut missing = Vec::new();
    for s in &demo.sessions {
        if data.session(s.id).await?.is_none() {
            missing.push(s.clone());
        }
    }
    if !missing.is_empty() {
        data.put_sessions(&missing).await?;
        tracing::info!(sessions = missing.len(), "added demo sessions");
    }
    if sandbox {
        for (username, name, password, roles) in DEMO_STAFF {
            if data.staff_by_username(username).await?.is_none() {
                let req = CreateStaff {
                    username: username.to_string(),
                    name: name.to_string(),
                    password: password.to_string(),
                    roles: roles.to_vec(),
                };
                create(data, req).await.map_err(|e| anyhow::anyhow!("creating demo staff {username}: {e}"))?;
            }
        }
    }
    Ok(())
}
