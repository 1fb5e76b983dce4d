//! Seeding: the demo hospital goes into an empty store; on every start the demo schedule is
//! topped up so the next 14 days always have sessions. Sessions already stored are never
//! overwritten (staff may have changed or stopped them).

use chrono::Utc;
use hospital_actors::schedule::session_jobs;
use hospital_actors::ActorConfig;
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
    ("agent", "客服小王", "agent-demo-2026", &[Role::Agent]),
];

/// The customer-service groups (CS-2), created when there are none: (code, name).
pub const CHAT_GROUPS: &[(&str, &str)] = &[("booking", "预约咨询"), ("billing", "缴费与医保"), ("reports", "报告咨询")];

/// Each group's first canned replies (快捷回复), with their variables.
pub const CANNED_REPLIES: &[(&str, &str)] = &[
    ("问候", "{patient_name}您好，我是{group}的{agent_name}，很高兴为您服务。"),
    ("稍等", "好的，请稍等，我帮您查询一下。"),
    ("结束", "请问还有其他可以帮您的吗？如没有，稍后请为本次服务评价，谢谢！"),
];

/// Creates the chat's service groups in a store that has none (open all day until staff set hours).
async fn seed_chat_groups(data: &dyn hospital_store::DataStore) -> anyhow::Result<()> {
    use hospital_domain::chat::{service_hours::ServiceHours, GroupCode, ServiceGroup};
    if !data.chat_groups().await?.is_empty() {
        return Ok(());
    }
    use hospital_domain::chat::canned::{CannedReply, CannedScope};
    for (code, name) in CHAT_GROUPS {
        let code = GroupCode::parse(code)?;
        let g = ServiceGroup { code: code.clone(), name: name.to_string(), hours: ServiceHours::always() };
        data.put_chat_group(&g).await?;
        for (title, template) in CANNED_REPLIES {
            let scope = CannedScope::Group { group: code.clone() };
            data.put_canned_reply(&CannedReply::new(hospital_domain::CannedReplyId::new(), scope, title, template)?)
                .await?;
        }
    }
    tracing::info!(groups = CHAT_GROUPS.len(), "seeded the chat's service groups");
    Ok(())
}

pub async fn seed_if_empty(stores: &Stores, actors: &ActorConfig, sandbox: bool) -> anyhow::Result<()> {
    let data = stores.data.as_ref();
    let zone = actors.zone;
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
        // Closed at their ends, their places published as each segment closes: the same jobs as
        // sessions staff add (`session_jobs`).
        for job in missing.iter().flat_map(|s| session_jobs(actors, s)) {
            data.schedule_job(&job).await?;
        }
        data.put_sessions(&missing).await?;
        tracing::info!(sessions = missing.len(), "added demo sessions");
    }
    seed_chat_groups(data).await?;
    if sandbox {
        for (username, name, password, roles) in DEMO_STAFF {
            if data.staff_by_username(username).await?.is_none() {
                let req = CreateStaff {
                    username: username.to_string(),
                    name: name.to_string(),
                    password: password.to_string(),
                    roles: roles.iter().map(|r| (*r).into()).collect(),
                    doctor_id: None,
                };
                let staff =
                    create(data, req).await.map_err(|e| anyhow::anyhow!("creating demo staff {username}: {e}"))?;
                if roles.contains(&Role::Agent) {
                    // The demo agent answers in every group.
                    let groups = data.chat_groups().await?.into_iter().map(|g| g.code).collect();
                    let cap = hospital_domain::chat::dispatcher::DEFAULT_CAP;
                    data.put_chat_agent(&hospital_domain::chat::AgentProfile::new(staff.id, name, groups, cap)?)
                        .await?;
                }
            }
        }
    }
    Ok(())
}
