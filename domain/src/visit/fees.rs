//! Fee items (待缴费项目) a visit gives rise to: one per prescription line and one per exam
//! order, billable once the visit is finished (the orders are final then). They are derived from
//! the visit, never stored apart from it, so a fee can not disagree with what was prescribed;
//! what is stored is which of them were paid, and by which order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::VisitId;
use crate::{AccountId, Fen, OrderId, PatientId, ValidationError};

/// What a fee is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// A prescription line (药费).
    Drug,
    /// An exam order (检查费).
    Exam,
}

impl FeeKind {
    fn as_str(self) -> &'static str {
        match self {
            FeeKind::Drug => "drug",
            FeeKind::Exam => "exam",
        }
    }
}

/// Names one fee item: the visit, the kind, and the line number. Shown and sent as
/// `<visit id>:<kind>:<no>`, e.g. `0190…:drug:2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FeeItemKey {
    pub visit_id: VisitId,
    pub kind: FeeKind,
    pub no: u32,
}

impl utoipa::PartialSchema for FeeItemKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("<visit id>:<drug|exam>:<line number>"))
            .examples(["01935c1e-7f0a-7c4e-9a55-0d3c2b1a0f00:drug:1"])
            .into()
    }
}
impl utoipa::ToSchema for FeeItemKey {}

impl fmt::Display for FeeItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.visit_id, self.kind.as_str(), self.no)
    }
}

impl FromStr for FeeItemKey {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValidationError::new("fee_item", "must be <visit id>:<drug|exam>:<line number>");
        let mut parts = s.trim().split(':');
        let (Some(visit), Some(kind), Some(no), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(err());
        };
        let visit_id = VisitId::parse(visit).map_err(|_| err())?;
        let kind = match kind {
            "drug" => FeeKind::Drug,
            "exam" => FeeKind::Exam,
            _ => return Err(err()),
        };
        let no = no.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(err)?;
        Ok(Self { visit_id, kind, no })
    }
}

impl TryFrom<String> for FeeItemKey {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FeeItemKey> for String {
    fn from(k: FeeItemKey) -> String {
        k.to_string()
    }
}

/// Something the patient owes for a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeeItem {
    pub key: FeeItemKey,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub kind: FeeKind,
    /// The drug or the exam.
    pub name: String,
    pub quantity: u32,
    /// What one unit is (盒); empty for an exam.
    pub unit: String,
    pub unit_price: Fen,
    pub amount: Fen,
    /// When it became billable: the end of the visit.
    pub billed_at: DateTime<Utc>,
    /// The order that paid it, once paid.
    pub paid_by: Option<OrderId>,
}

/// A record that fee items were paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaidFee {
    pub key: FeeItemKey,
    pub order_id: OrderId,
    pub paid_at: DateTime<Utc>,
}

/// The unpaid fee items of a patient's visits, oldest first (then by visit, kind, line).
pub fn unpaid_fee_items<'a>(visits: impl IntoIterator<Item = &'a super::Visit>) -> Vec<FeeItem> {
    let mut out: Vec<FeeItem> = visits.into_iter().flat_map(|v| v.unpaid_fee_items()).collect();
    out.sort_by_key(|f| (f.billed_at, f.key));
    out
}

/// The sum of some fee items; `None` if it would overflow (a bug upstream, not a large bill).
pub fn total(items: &[FeeItem]) -> Option<Fen> {
    items.iter().try_fold(Fen::ZERO, |sum, f| sum.checked_add(f.amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse() {
        let k = FeeItemKey { visit_id: VisitId::new(), kind: FeeKind::Exam, no: 3 };
        let s = k.to_string();
        assert!(s.ends_with(":exam:3"), "{s}");
        assert_eq!(s.parse::<FeeItemKey>().unwrap(), k);
        assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(s.clone()));
        for bad in ["", "x:drug:1", &format!("{}:pill:1", k.visit_id), &format!("{}:drug:0", k.visit_id), &(s + ":9")] {
            assert_eq!(bad.parse::<FeeItemKey>().unwrap_err().field, "fee_item", "{bad}");
        }
    }
}
