//! Canned replies (快捷回复, CS-2): texts an agent sends with one click, kept per service group or
//! per agent, with variables filled in for the conversation at hand.
//!
//! Variables are `{patient_name}`, `{agent_name}` and `{group}` (the group's name as patients see
//! it). Rendering is one pass over the template: a known variable is replaced by its value as
//! is, and the value is never scanned again, so a patient who calls themselves `{agent_name}`
//! is shown as that; anything else in braces (an unknown or misspelt variable, a lone `{`) is
//! left as written, so a typo shows in the agent's preview instead of vanishing. The result is
//! plain text like any typed message (clients escape it) and is sent through
//! `MessageBody::text`, which checks it like one.

use serde::{Deserialize, Serialize};

use super::GroupCode;
use crate::text::{parse_text, Lines};
use crate::{CannedReplyId, StaffId, ValidationError};

pub const MAX_TITLE_CHARS: usize = 40;
pub const MAX_TEMPLATE_CHARS: usize = 1000;

/// Whose a canned reply is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CannedScope {
    /// Every agent of the group may use it.
    Group { group: GroupCode },
    /// One agent's own.
    Agent { agent: StaffId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CannedReply {
    pub id: CannedReplyId,
    pub scope: CannedScope,
    /// What the agent picks it by (a single line).
    pub title: String,
    pub template: String,
}

/// The values of a conversation's variables.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    pub patient_name: &'a str,
    pub agent_name: &'a str,
    /// The group's name (预约咨询), not its code.
    pub group: &'a str,
}

impl<'a> Vars<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        match name {
            "patient_name" => Some(self.patient_name),
            "agent_name" => Some(self.agent_name),
            "group" => Some(self.group),
            _ => None,
        }
    }
}

/// Fills the variables of `template` (see the module's rules).
pub fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(after.len());
        match (after[name_len..].starts_with('}'), vars.get(&after[..name_len])) {
            (true, Some(value)) => {
                out.push_str(value);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

impl CannedReply {
    /// A title of 1 to `MAX_TITLE_CHARS` characters on one line, a template of 1 to
    /// `MAX_TEMPLATE_CHARS`.
    pub fn new(id: CannedReplyId, scope: CannedScope, title: &str, template: &str) -> Result<Self, ValidationError> {
        Ok(Self {
            id,
            scope,
            title: parse_text("title", title, MAX_TITLE_CHARS, Lines::Single)?,
            template: parse_text("template", template, MAX_TEMPLATE_CHARS, Lines::Multi)?,
        })
    }

    pub fn render(&self, vars: &Vars) -> String {
        render(&self.template, vars)
    }

    /// Whether `agent`, serving `group`, may use it.
    pub fn usable_by(&self, agent: StaffId, group: &GroupCode) -> bool {
        match &self.scope {
            CannedScope::Group { group: g } => g == group,
            CannedScope::Agent { agent: a } => *a == agent,
        }
    }
}

/// The replies `agent` may use in `group`: their own first, then the group's, each in the order
/// given.
pub fn usable_by<'a>(replies: &'a [CannedReply], agent: StaffId, group: &GroupCode) -> Vec<&'a CannedReply> {
    let (mut own, shared): (Vec<_>, Vec<_>) = replies
        .iter()
        .filter(|r| r.usable_by(agent, group))
        .partition(|r| matches!(r.scope, CannedScope::Agent { .. }));
    own.extend(shared);
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Vars = Vars { patient_name: "李雷", agent_name: "小王", group: "预约咨询" };

    #[test]
    fn variables_are_filled_once_and_unknown_ones_kept() {
        assert_eq!(render("{patient_name}您好，我是{group}的{agent_name}。", &VARS), "李雷您好，我是预约咨询的小王。");
        assert_eq!(render("{patient_name}{patient_name}", &VARS), "李雷李雷");
        assert_eq!(render("{unknown} {Patient_name} {patient_name", &VARS), "{unknown} {Patient_name} {patient_name");
        assert_eq!(render("{{patient_name}} { } {", &VARS), "{李雷} { } {");
        assert_eq!(render("no variables", &VARS), "no variables");
        // Values are not expanded again, and markup stays text.
        let odd = Vars { patient_name: "{agent_name}<b>", ..VARS };
        assert_eq!(render("您好 {patient_name}", &odd), "您好 {agent_name}<b>");
    }

    #[test]
    fn scopes() {
        let me = StaffId::new();
        let booking = GroupCode::parse("booking").unwrap();
        let billing = GroupCode::parse("billing").unwrap();
        let r = |scope, title| CannedReply::new(CannedReplyId::new(), scope, title, "{patient_name}您好").unwrap();
        let replies = vec![
            r(CannedScope::Group { group: booking.clone() }, "问候"),
            r(CannedScope::Group { group: billing.clone() }, "缴费"),
            r(CannedScope::Agent { agent: me }, "我的问候"),
            r(CannedScope::Agent { agent: StaffId::new() }, "别人的"),
        ];
        let titles: Vec<&str> = usable_by(&replies, me, &booking).iter().map(|r| r.title.as_str()).collect();
        assert_eq!(titles, vec!["我的问候", "问候"]);
        assert_eq!(replies[0].render(&VARS), "李雷您好");
        assert!(CannedReply::new(CannedReplyId::new(), CannedScope::Agent { agent: me }, "两\n行", "x").is_err());
        assert!(CannedReply::new(CannedReplyId::new(), CannedScope::Agent { agent: me }, "t", " ").is_err());
    }
}
