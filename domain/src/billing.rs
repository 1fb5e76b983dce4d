//! Fee items waiting to be paid (待缴费项目, PAY-1), whatever produced them: a visit's
//! prescriptions and exam orders (`crate::visit::FeeItem`, converted by `NewFeeItem::from_visit`)
//! or the hospital's HIS through its signed integration API. One store of them per account, so
//! a checkout can take several items of one 就诊人 whatever their source.
//!
//! An item is `unpaid`, then `ordered` (claimed by one open order: no other order may take it),
//! then `paid`; closing or expiring the order makes it `unpaid` again. Items are keyed by their
//! source (`visit:<visit>:<kind>:<no>`, `his:<HIS id>`), so the same item sent twice is one item.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{AccountId, DepartmentId, Fen, OrderId, PatientId, ValidationError};

/// What a fee is for: the rows of the finance reports by fee type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeType {
    /// 挂号费
    Registration,
    /// 检查费 (exams and lab tests)
    Exam,
    /// 药费
    Drug,
}

impl FeeType {
    pub const ALL: [FeeType; 3] = [FeeType::Registration, FeeType::Exam, FeeType::Drug];

    pub fn as_str(self) -> &'static str {
        match self {
            FeeType::Registration => "registration",
            FeeType::Exam => "exam",
            FeeType::Drug => "drug",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            FeeType::Registration => "挂号费",
            FeeType::Exam => "检查费",
            FeeType::Drug => "药费",
        }
    }
}

/// A fee item's key: its source and the source's own id, e.g. `his:CF20261125-0001` or
/// `visit:<visit id>:exam:1`. 3 to 96 characters of `[A-Za-z0-9:_.-]`, so it is safe in a URL, a
/// log line and a storage key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FeeItemId(String);

impl FeeItemId {
    pub const MAX_LEN: usize = 96;

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim();
        let ok = (3..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-'));
        if !ok {
            return Err(ValidationError::new("fee_item_id", "3 to 96 characters of letters, digits and : _ . -"));
        }
        Ok(Self(s.to_string()))
    }

    /// The key of an item the HIS sends under its own id.
    pub fn his(his_id: &str) -> Result<Self, ValidationError> {
        Self::parse(&format!("his:{}", his_id.trim()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeeItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FeeItemId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<FeeItemId> for String {
    fn from(k: FeeItemId) -> String {
        k.0
    }
}

impl utoipa::PartialSchema for FeeItemId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(3))
            .max_length(Some(Self::MAX_LEN))
            .pattern(Some("^[A-Za-z0-9:_.-]+$"))
            .examples(["his:CF20261125-0001"])
            .into()
    }
}
impl utoipa::ToSchema for FeeItemId {}

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeItemStatus {
    Unpaid,
    /// Taken by an open order (`order_id`).
    Ordered,
    Paid,
}

/// Longest item name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most units of one item.
pub const MAX_QUANTITY: u32 = 9999;
/// Longest insurance catalogue code (national codes are 15 to 27 characters).
pub const MAX_INSURANCE_CODE: usize = 50;

/// A fee item as a source hands it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFeeItem {
    pub id: FeeItemId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub fee_type: FeeType,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Fen,
    pub amount: Fen,
    /// The department whose income it is (finance reports by department).
    pub department_id: Option<DepartmentId>,
    /// 医疗目录编码, the national insurance catalogue code that decides 甲/乙/丙; none: the item
    /// is not billed to insurance (paid in full by the patient).
    pub insurance_code: Option<String>,
    pub billed_at: DateTime<Utc>,
}

impl NewFeeItem {
    /// The checks every item passes before it is stored: a name, a quantity in range, a positive
    /// amount equal to quantity × unit price and within what the platform accepts, a sane code.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let chars = self.name.trim().chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || self.name.chars().any(char::is_control) {
            return Err(ValidationError::new("name", format!("1 to {MAX_NAME_CHARS} characters, one line")));
        }
        if self.quantity == 0 || self.quantity > MAX_QUANTITY {
            return Err(ValidationError::new("quantity", format!("1 to {MAX_QUANTITY}")));
        }
        let expected = self.unit_price.get().checked_mul(u64::from(self.quantity));
        if expected != Some(self.amount.get()) {
            return Err(ValidationError::new("amount", "must equal quantity × unit_price"));
        }
        if self.amount == Fen::ZERO || self.amount > Fen::MAX_ACCEPTED {
            return Err(ValidationError::new("amount", "1 fen to ¥10,000,000.00"));
        }
        if let Some(code) = &self.insurance_code {
            let ok = !code.is_empty()
                && code.len() <= MAX_INSURANCE_CODE
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(ValidationError::new("insurance_code", "1 to 50 letters and digits"));
            }
        }
        Ok(())
    }

    /// The item of a finished visit's fee (`crate::visit::FeeItem`): the visit's department is
    /// its income; the catalogue code comes from the hospital's price list when it has one.
    pub fn from_visit(
        item: &crate::visit::FeeItem,
        department_id: DepartmentId,
        insurance_code: Option<String>,
    ) -> Result<Self, ValidationError> {
        let id = FeeItemId::parse(&format!("visit:{}", item.key))?;
        let fee_type = match item.kind {
            crate::visit::FeeKind::Drug => FeeType::Drug,
            crate::visit::FeeKind::Exam => FeeType::Exam,
        };
        let new = Self {
            id,
            account_id: item.account_id,
            patient_id: item.patient_id,
            fee_type,
            name: item.name.clone(),
            quantity: item.quantity,
            unit_price: item.unit_price,
            amount: item.amount,
            department_id: Some(department_id),
            insurance_code,
            billed_at: item.billed_at,
        };
        new.validate()?;
        Ok(new)
    }
}

/// A fee item as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeItem {
    pub id: FeeItemId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub fee_type: FeeType,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Fen,
    pub amount: Fen,
    pub department_id: Option<DepartmentId>,
    pub insurance_code: Option<String>,
    pub billed_at: DateTime<Utc>,
    pub status: FeeItemStatus,
    /// The open order holding it, or the order that paid it.
    pub order_id: Option<OrderId>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// Why an item could not be taken or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeItemError {
    #[error("fee item {0} is already in order {1}")]
    Taken(FeeItemId, OrderId),
    #[error("fee item {0} is already paid")]
    Paid(FeeItemId),
    #[error("fee item {0} was sent before with other content")]
    Changed(FeeItemId),
}

impl FeeItem {
    pub fn new(n: NewFeeItem) -> Self {
        Self {
            id: n.id,
            account_id: n.account_id,
            patient_id: n.patient_id,
            fee_type: n.fee_type,
            name: n.name.trim().to_string(),
            quantity: n.quantity,
            unit_price: n.unit_price,
            amount: n.amount,
            department_id: n.department_id,
            insurance_code: n.insurance_code,
            billed_at: n.billed_at,
            status: FeeItemStatus::Unpaid,
            order_id: None,
            paid_at: None,
        }
    }

    /// Whether `n` is this item sent again (an idempotent repeat): everything a source decides
    /// is the same.
    pub fn same_as(&self, n: &NewFeeItem) -> bool {
        self.id == n.id
            && self.account_id == n.account_id
            && self.patient_id == n.patient_id
            && self.fee_type == n.fee_type
            && self.name == n.name.trim()
            && self.quantity == n.quantity
            && self.unit_price == n.unit_price
            && self.amount == n.amount
            && self.department_id == n.department_id
            && self.insurance_code == n.insurance_code
    }

    /// An open order takes the item.
    pub fn claim(&mut self, order: OrderId) -> Result<(), FeeItemError> {
        match self.status {
            FeeItemStatus::Unpaid => {
                self.status = FeeItemStatus::Ordered;
                self.order_id = Some(order);
                Ok(())
            }
            FeeItemStatus::Ordered if self.order_id == Some(order) => Ok(()),
            FeeItemStatus::Ordered => Err(FeeItemError::Taken(self.id.clone(), self.order_id.unwrap_or_default())),
            FeeItemStatus::Paid => Err(FeeItemError::Paid(self.id.clone())),
        }
    }

    /// The order holding it closed unpaid: the item may be ordered again. Another order's item
    /// is left alone.
    pub fn release(&mut self, order: OrderId) {
        if self.status == FeeItemStatus::Ordered && self.order_id == Some(order) {
            self.status = FeeItemStatus::Unpaid;
            self.order_id = None;
        }
    }

    /// The order holding it was paid.
    pub fn mark_paid(&mut self, order: OrderId, at: DateTime<Utc>) {
        if self.order_id == Some(order) && self.status != FeeItemStatus::Paid {
            self.status = FeeItemStatus::Paid;
            self.paid_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_item() -> NewFeeItem {
        NewFeeItem {
            id: FeeItemId::his("CF-1").unwrap(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            fee_type: FeeType::Exam,
            name: "胸部CT平扫".into(),
            quantity: 1,
            unit_price: Fen::new(35000),
            amount: Fen::new(35000),
            department_id: None,
            insurance_code: Some("002101000010000".into()),
            billed_at: Utc::now(),
        }
    }

    #[test]
    fn ids_are_checked() {
        assert_eq!(FeeItemId::his("CF-1").unwrap().as_str(), "his:CF-1");
        for bad in ["", "ab", "his:a b", "his:<x>", &"x".repeat(97)] {
            assert!(FeeItemId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn items_validate_amounts() {
        assert!(new_item().validate().is_ok());
        let wrong = NewFeeItem { amount: Fen::new(1), ..new_item() };
        assert_eq!(wrong.validate().unwrap_err().field, "amount");
        let zero = NewFeeItem { quantity: 0, ..new_item() };
        assert_eq!(zero.validate().unwrap_err().field, "quantity");
        let free = NewFeeItem { unit_price: Fen::ZERO, amount: Fen::ZERO, ..new_item() };
        assert_eq!(free.validate().unwrap_err().field, "amount");
        let code = NewFeeItem { insurance_code: Some("x y".into()), ..new_item() };
        assert_eq!(code.validate().unwrap_err().field, "insurance_code");
    }

    #[test]
    fn claim_release_pay() {
        let n = new_item();
        let mut item = FeeItem::new(n.clone());
        assert!(item.same_as(&n));
        assert!(!item.same_as(&NewFeeItem { name: "别的".into(), ..n.clone() }));
        let (a, b) = (OrderId::new(), OrderId::new());
        item.claim(a).unwrap();
        item.claim(a).unwrap();
        assert_eq!(item.claim(b), Err(FeeItemError::Taken(item.id.clone(), a)));
        item.release(b);
        assert_eq!(item.status, FeeItemStatus::Ordered, "another order cannot release it");
        item.release(a);
        item.claim(b).unwrap();
        item.mark_paid(b, Utc::now());
        assert_eq!(item.status, FeeItemStatus::Paid);
        assert_eq!(item.claim(a), Err(FeeItemError::Paid(item.id.clone())));
    }
}
