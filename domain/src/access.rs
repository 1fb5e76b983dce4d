//! Roles and permissions as data (ADM-2). A `Permission` is one of a closed set named
//! `area.verb` (`schedule.write`); every staff route names the one it needs. A role is a name and
//! a set of permissions, stored (`RoleDef`); the six built-in roles are seeded from
//! `builtin_roles` and custom ones are added by administrators. A staff session carries its role
//! names, and `RoleTable::allows` resolves a check through the table, so changing a role changes
//! what every session holding it may do, at once.
//!
//! Two rules are fixed in code, not data: `admin` holds every permission (an administrator can
//! never lock the hospital out of its own back office), and `staff.self` (one's own profile,
//! password and the staff notices) is held by every staff member whatever their roles.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::ValidationError;

macro_rules! permissions {
    ($($(#[$m:meta])* $variant:ident = $name:literal, $label:literal;)*) => {
        /// What a staff route needs. Closed: a name outside this list is refused wherever it is
        /// read (a role's permissions, a route's annotation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Permission {
            $($(#[$m])* #[serde(rename = $name)] $variant,)*
        }

        impl Permission {
            /// Every permission, in a fixed order (the console lists them in it).
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),*];

            /// The permission's stable name, `area.verb`.
            pub fn name(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What staff read in the console.
            pub fn label(self) -> &'static str {
                match self { $(Permission::$variant => $label,)* }
            }

            pub fn parse(s: &str) -> Option<Permission> {
                match s { $($name => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    /// One's own profile and password, the staff notices: every staff member holds it.
    StaffSelf = "staff.self", "本人信息与员工公告";
    CatalogWrite = "catalog.write", "维护医院信息、科室与医生";
    CatalogImport = "catalog.import", "批量导入科室、医生与排班模板";
    ScheduleRead = "schedule.read", "查看排班与预约名单";
    ScheduleWrite = "schedule.write", "排班、号源调整与停诊";
    QueueOperate = "queue.operate", "分诊叫号";
    ExamsWrite = "exams.write", "开立检查与更新检查状态";
    PaymentsRead = "payments.read", "查看订单、账单与对账";
    PaymentsRefund = "payments.refund", "退款";
    /// Running reconciliation for a day and closing its differences (PAY-4).
    PaymentsReconcile = "payments.reconcile", "对账：运行对账与处理差异";
    RecordsRead = "records.read", "查看病历与就诊记录";
    RecordsWrite = "records.write", "书写病历、处方与医嘱";
    ChatAgent = "chat.agent", "在线客服接待";
    /// Service groups, agents, service hours, the FAQ and group canned replies.
    ChatAdmin = "chat.admin", "客服管理（分组、坐席、服务时间、常见问题、分组快捷回复）";
    /// Every group's conversations and backlog, taking a conversation over.
    ChatSupervise = "chat.supervise", "客服主管（查看全部会话与队列、接管会话）";
    StaffRead = "staff.read", "查看员工";
    StaffWrite = "staff.write", "新增、修改、停用员工与重置密码";
    RolesRead = "roles.read", "查看角色与权限";
    RolesWrite = "roles.write", "维护角色与权限";
    PatientsRead = "patients.read", "查询与查看患者账号";
    PatientsWrite = "patients.write", "停用与解锁患者账号";
    AuditRead = "audit.read", "查询与导出审计日志";
    AnalyticsRead = "analytics.read", "统计分析与导出";
    ContentWrite = "content.write", "公告、资讯、常见问题与协议";
    ChatFeedback = "chat.feedback", "查看患者意见反馈与截图";
}

/// Written by hand: the derive does not see the `serde(rename)` of the macro's variants, and the
/// document must list the names on the wire (`schedule.write`).
impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Permission::ALL.iter().map(|p| p.name())))
            .description(Some("A permission, `area.verb`"))
            .into()
    }
}

impl utoipa::ToSchema for Permission {}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role's name: 2 to 32 of `a-z`, `0-9`, `_`, starting with a letter (`triage_lead`). Built-in
/// roles have the names of `Role`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "scheduler")]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim();
        let ok = (2..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(RoleName(s.to_string()))
        } else {
            Err(ValidationError::new("role", "2 to 32 of a-z, 0-9 and _, starting with a letter"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_admin(&self) -> bool {
        self.0 == "admin"
    }
}

impl From<crate::Role> for RoleName {
    fn from(r: crate::Role) -> Self {
        RoleName(r.to_string())
    }
}

impl TryFrom<String> for RoleName {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RoleName::parse(&s)
    }
}

impl From<RoleName> for String {
    fn from(r: RoleName) -> String {
        r.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<crate::Role> for RoleName {
    fn eq(&self, other: &crate::Role) -> bool {
        self.0 == other.to_string()
    }
}

/// A role as stored: its name, what the console calls it, and its permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleDef {
    pub name: RoleName,
    /// The name staff read (`排班专员`), 1 to 32 characters.
    pub label: String,
    #[serde(deserialize_with = "known_permissions")]
    pub permissions: BTreeSet<Permission>,
    /// One of the six built-in roles: it cannot be deleted (its permissions can be changed,
    /// except admin's).
    pub builtin: bool,
    /// For a built-in role: the permissions of its built-in definition the hospital took away.
    /// A later release that gives the role more is applied at start-up (`with_new_defaults`),
    /// without handing back what was taken away on purpose.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<Permission>,
}

/// A stored role may name a permission a later version dropped: it is ignored, not an error
/// that would lock everyone holding the role out.
fn known_permissions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<Permission>, D::Error> {
    let names: Vec<String> = Vec::deserialize(d)?;
    Ok(names.iter().filter_map(|n| Permission::parse(n)).collect())
}

impl RoleDef {
    /// Checks a role sent by an administrator: a valid label; `staff.self` is implied, so it is
    /// left out of the stored set.
    pub fn new(
        name: RoleName,
        label: &str,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Result<Self, ValidationError> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 32 || label.chars().any(char::is_control) {
            return Err(ValidationError::new("label", "1 to 32 printable characters"));
        }
        let permissions = permissions.into_iter().filter(|p| *p != Permission::StaffSelf).collect();
        Ok(RoleDef { name, label: label.to_string(), permissions, builtin: false, withheld: BTreeSet::new() })
    }

    /// The built-in definition of this role's name, if it is one.
    fn default_def(&self) -> Option<RoleDef> {
        builtin_roles().into_iter().find(|b| b.name == self.name)
    }

    /// Notes, for a built-in role being edited, which of its default permissions it no longer
    /// has (so an upgrade does not give them back).
    pub fn note_withheld(&mut self) {
        if let Some(d) = self.default_def() {
            self.builtin = true;
            self.withheld = d.permissions.difference(&self.permissions).copied().collect();
        }
    }

    /// A stored built-in role with the permissions this release's definition adds to it (those
    /// neither held nor withheld), or None if it has them all. Rows stored before `withheld`
    /// existed record no withdrawals, so they get every default they lack.
    pub fn with_new_defaults(&self) -> Option<RoleDef> {
        let d = self.default_def().filter(|_| self.builtin)?;
        let new: Vec<Permission> = d
            .permissions
            .iter()
            .filter(|p| !self.permissions.contains(p) && !self.withheld.contains(p))
            .copied()
            .collect();
        if new.is_empty() {
            return None;
        }
        let mut up = self.clone();
        up.permissions.extend(new);
        Some(up)
    }
}

/// The built-in roles and their default permissions (seeded into an empty role table).
pub fn builtin_roles() -> Vec<RoleDef> {
    use Permission as P;
    let role = |name: &str, label: &str, perms: &[Permission]| RoleDef {
        name: RoleName(name.to_string()),
        label: label.to_string(),
        permissions: perms.iter().copied().filter(|p| *p != P::StaffSelf).collect(),
        builtin: true,
        withheld: BTreeSet::new(),
    };
    vec![
        role("admin", "系统管理员", Permission::ALL),
        role("scheduler", "排班专员", &[P::ScheduleRead, P::ScheduleWrite, P::CatalogImport, P::AnalyticsRead]),
        role("doctor", "医生", &[P::ScheduleRead, P::QueueOperate, P::ExamsWrite, P::RecordsRead, P::RecordsWrite]),
        role("nurse", "护士", &[P::ScheduleRead, P::QueueOperate, P::ExamsWrite, P::RecordsRead]),
        role("agent", "客服", &[P::PatientsRead, P::ChatAgent, P::ChatFeedback]),
        role("finance", "财务", &[P::PaymentsRead, P::PaymentsRefund, P::PaymentsReconcile, P::AnalyticsRead]),
    ]
}

/// The role table in memory: what each role name may do.
#[derive(Debug, Clone, Default)]
pub struct RoleTable {
    roles: HashMap<RoleName, RoleDef>,
}

impl RoleTable {
    pub fn new(roles: impl IntoIterator<Item = RoleDef>) -> Self {
        Self { roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect() }
    }

    /// Whether a staff member holding `roles` may do what `p` names. Unknown role names (a role
    /// deleted since the session began) grant nothing.
    pub fn allows(&self, roles: &[RoleName], p: Permission) -> bool {
        if p == Permission::StaffSelf || roles.iter().any(RoleName::is_admin) {
            return true;
        }
        roles.iter().filter_map(|r| self.roles.get(r)).any(|r| r.permissions.contains(&p))
    }

    /// Everything `roles` may do, in `Permission::ALL` order.
    pub fn permissions_of(&self, roles: &[RoleName]) -> Vec<Permission> {
        Permission::ALL.iter().copied().filter(|p| self.allows(roles, *p)).collect()
    }

    pub fn get(&self, name: &RoleName) -> Option<&RoleDef> {
        self.roles.get(name)
    }

    /// The roles, built-in ones first, then by name.
    pub fn list(&self) -> Vec<&RoleDef> {
        let mut v: Vec<&RoleDef> = self.roles.values().collect();
        v.sort_by(|a, b| b.builtin.cmp(&a.builtin).then_with(|| a.name.cmp(&b.name)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_closed() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.name()), Some(*p));
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            let (area, verb) = p.name().split_once('.').expect("area.verb");
            assert!(!area.is_empty() && !verb.is_empty());
        }
        assert_eq!(Permission::parse("schedule.delete_everything"), None);
        assert!(serde_json::from_str::<Permission>("\"nope.nope\"").is_err());
    }

    #[test]
    fn the_table_resolves_roles_admin_holds_all_and_self_is_for_everyone() {
        let table = RoleTable::new(builtin_roles());
        let r = |s: &str| RoleName::parse(s).unwrap();
        assert!(table.allows(&[r("scheduler")], Permission::ScheduleWrite));
        assert!(!table.allows(&[r("scheduler")], Permission::PaymentsRefund));
        assert!(table.allows(&[r("scheduler"), r("finance")], Permission::PaymentsRefund));
        for p in Permission::ALL {
            assert!(table.allows(&[r("admin")], *p));
        }
        assert!(table.allows(&[r("gone_role")], Permission::StaffSelf));
        assert!(!table.allows(&[r("gone_role")], Permission::ScheduleRead), "an unknown role grants nothing");
        let custom = RoleDef::new(r("refunds_only"), "退款专员", [Permission::PaymentsRefund]).unwrap();
        let table = RoleTable::new(builtin_roles().into_iter().chain([custom]));
        assert_eq!(table.permissions_of(&[r("refunds_only")]), [Permission::StaffSelf, Permission::PaymentsRefund]);
        // A permission a later version dropped is ignored when a stored role is read.
        let stored = r#"{"name":"x_role","label":"x","permissions":["payments.refund","old.thing"],"builtin":false}"#;
        let def: RoleDef = serde_json::from_str(stored).unwrap();
        assert_eq!(def.permissions.into_iter().collect::<Vec<_>>(), [Permission::PaymentsRefund]);
        assert!(RoleName::parse("Admin").is_err() && RoleName::parse("a").is_err() && RoleName::parse("1x").is_err());
    }

    #[test]
    fn a_release_adds_new_defaults_to_built_in_roles_but_not_what_the_hospital_took_away() {
        let agent = || builtin_roles().into_iter().find(|r| r.name.as_str() == "agent").unwrap();
        assert_eq!(agent().with_new_defaults(), None, "the current definition has everything");
        // Stored by an older release, before chat.feedback existed (no `withheld` field).
        let old = r#"{"name":"agent","label":"客服","permissions":["patients.read","chat.agent"],"builtin":true}"#;
        let old: RoleDef = serde_json::from_str(old).unwrap();
        let up = old.with_new_defaults().expect("chat.feedback is new");
        assert_eq!(up.permissions, agent().permissions);
        assert_eq!(up.label, "客服");
        // The hospital took chat.feedback away and gave finance's payments.read: kept so.
        let mut edited = RoleDef { permissions: [Permission::ChatAgent, Permission::PaymentsRead].into(), ..agent() };
        edited.note_withheld();
        assert_eq!(edited.withheld, [Permission::PatientsRead, Permission::ChatFeedback].into());
        assert_eq!(edited.with_new_defaults(), None);
        let json = serde_json::to_string(&edited).unwrap();
        assert_eq!(serde_json::from_str::<RoleDef>(&json).unwrap(), edited, "withheld is stored");
        // A custom role is never touched.
        let custom = RoleDef::new(RoleName::parse("agent_lite").unwrap(), "x", [Permission::ChatAgent]).unwrap();
        assert_eq!(custom.with_new_defaults(), None);
    }
}
