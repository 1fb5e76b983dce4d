//! Exam orders (检查/检验申请) a doctor makes during a visit. Each becomes an `Exam` (see
//! `crate::exam`) once the exam service books it; the order keeps the link for the record.

use serde::{Deserialize, Serialize};

use super::prescription::line_amount;
use super::text::invalid;
use crate::exam::{parse_exam_name, ExamKind};
use crate::{ExamId, Fen, ValidationError};

/// One exam order as the doctor sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExamOrderInput {
    /// What is examined, e.g. 胸部CT平扫.
    pub name: String,
    pub kind: ExamKind,
    /// The price, in fen.
    pub price: Fen,
}

/// A validated exam order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExamOrder {
    /// Its line number on the visit, from 1: the key of its fee item.
    pub no: u32,
    pub name: String,
    pub kind: ExamKind,
    pub price: Fen,
    /// The exam booked for this order, once there is one.
    pub exam_id: Option<ExamId>,
}

impl ExamOrder {
    /// Validates the `no`-th (from 1) exam order of a visit.
    pub fn parse(input: &ExamOrderInput, no: u32) -> Result<Self, ValidationError> {
        let item = Some(no as usize);
        let name = parse_exam_name(&input.name).map_err(|e| invalid("exam_orders.name", item, e.reason))?;
        line_amount("exam_orders.price", item, input.price, 1)?;
        Ok(Self { no, name, kind: input.kind, price: input.price, exam_id: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_validated() {
        let ok = ExamOrderInput { name: " 血常规 ".into(), kind: ExamKind::Lab, price: Fen::new(2500) };
        let o = ExamOrder::parse(&ok, 2).unwrap();
        assert_eq!((o.no, o.name.as_str(), o.price, o.exam_id), (2, "血常规", Fen::new(2500), None));
        let e = ExamOrder::parse(&ExamOrderInput { name: "".into(), ..ok.clone() }, 3).unwrap_err();
        assert_eq!(e.field, "exam_orders.name");
        assert!(e.reason.starts_with("item 3: must be 1 to"), "{e}");
        let dear = ExamOrderInput { price: Fen::new(Fen::MAX_ACCEPTED.get() + 1), ..ok };
        assert_eq!(ExamOrder::parse(&dear, 1).unwrap_err().field, "exam_orders.price");
    }
}
