//! Prescriptions (处方): what drug, how much per dose, how often, for how many days, how many
//! packs are dispensed and at what price. Money is integer fen; an item's amount is its unit
//! price times its quantity, computed here once so every reader sees the same sum.

use serde::{Deserialize, Serialize};

use super::text::{invalid, optional_text, text, Lines};
use crate::{Fen, ValidationError};

pub const MAX_DRUG_CHARS: usize = 100;
pub const MAX_SPEC_CHARS: usize = 50;
pub const MAX_DOSE_CHARS: usize = 32;
pub const MAX_ROUTE_CHARS: usize = 20;
pub const MAX_UNIT_CHARS: usize = 8;
/// Longest course, in days (long prescriptions for chronic illness run up to 12 weeks).
pub const MAX_DAYS: u32 = 90;
/// Most packs of one drug on one prescription.
pub const MAX_QUANTITY: u32 = 9999;

/// How often a dose is taken, with the abbreviations doctors write (qd, bid, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Once a day.
    Qd,
    /// Twice a day.
    Bid,
    /// Three times a day.
    Tid,
    /// Four times a day.
    Qid,
    /// Every 8 hours.
    Q8h,
    /// Every 12 hours.
    Q12h,
    /// Every night, at bedtime.
    Qn,
    /// Once a week.
    Qw,
    /// When needed.
    Prn,
    /// Once only (立即/单次).
    Once,
}

impl Frequency {
    /// The label printed on the prescription.
    pub fn label(self) -> &'static str {
        match self {
            Frequency::Qd => "每日一次",
            Frequency::Bid => "每日两次",
            Frequency::Tid => "每日三次",
            Frequency::Qid => "每日四次",
            Frequency::Q8h => "每8小时一次",
            Frequency::Q12h => "每12小时一次",
            Frequency::Qn => "每晚一次",
            Frequency::Qw => "每周一次",
            Frequency::Prn => "必要时",
            Frequency::Once => "单次",
        }
    }

    /// Doses per period, and the period as (length, UCUM unit): `Tid` is 3 per 1 `d`. `None`
    /// for `Prn` and `Once`, which have no schedule.
    pub fn schedule(self) -> Option<(u32, u32, &'static str)> {
        Some(match self {
            Frequency::Qd | Frequency::Qn => (1, 1, "d"),
            Frequency::Bid => (2, 1, "d"),
            Frequency::Tid => (3, 1, "d"),
            Frequency::Qid => (4, 1, "d"),
            Frequency::Q8h => (1, 8, "h"),
            Frequency::Q12h => (1, 12, "h"),
            Frequency::Qw => (1, 1, "wk"),
            Frequency::Prn | Frequency::Once => return None,
        })
    }
}

/// One prescription line as the doctor sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrescriptionInput {
    /// The drug, e.g. 阿莫西林胶囊.
    pub drug: String,
    /// Its strength and pack (规格), e.g. 0.25g×24粒.
    #[serde(default)]
    pub spec: Option<String>,
    /// One dose (单次剂量), e.g. 0.5g.
    pub dose: String,
    /// How it is taken (用法), e.g. 口服.
    #[serde(default)]
    pub route: Option<String>,
    pub frequency: Frequency,
    /// Days of treatment, 1 to `MAX_DAYS`.
    pub days: u32,
    /// Packs dispensed, 1 to `MAX_QUANTITY`.
    pub quantity: u32,
    /// What one pack is (盒, 瓶, 支).
    pub unit: String,
    /// The price of one pack, in fen.
    pub unit_price: Fen,
}

/// A validated prescription line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrescriptionItem {
    /// Its line number on the visit, from 1: the key of its fee item.
    pub no: u32,
    pub drug: String,
    pub spec: Option<String>,
    pub dose: String,
    pub route: Option<String>,
    pub frequency: Frequency,
    pub days: u32,
    pub quantity: u32,
    pub unit: String,
    pub unit_price: Fen,
    /// `unit_price` × `quantity`.
    pub amount: Fen,
}

impl PrescriptionItem {
    /// Validates the `no`-th (from 1) line of a prescription.
    pub fn parse(input: &PrescriptionInput, no: u32) -> Result<Self, ValidationError> {
        let item = Some(no as usize);
        let drug = text("prescription.drug", item, &input.drug, MAX_DRUG_CHARS, Lines::One)?;
        let spec = optional_text("prescription.spec", item, input.spec.as_deref(), MAX_SPEC_CHARS, Lines::One)?;
        let dose = text("prescription.dose", item, &input.dose, MAX_DOSE_CHARS, Lines::One)?;
        let route = optional_text("prescription.route", item, input.route.as_deref(), MAX_ROUTE_CHARS, Lines::One)?;
        if !(1..=MAX_DAYS).contains(&input.days) {
            return Err(invalid("prescription.days", item, format!("must be 1 to {MAX_DAYS} days")));
        }
        if !(1..=MAX_QUANTITY).contains(&input.quantity) {
            return Err(invalid("prescription.quantity", item, format!("must be 1 to {MAX_QUANTITY}")));
        }
        let unit = text("prescription.unit", item, &input.unit, MAX_UNIT_CHARS, Lines::One)?;
        let amount = line_amount("prescription.unit_price", item, input.unit_price, input.quantity)?;
        Ok(Self {
            no,
            drug,
            spec,
            dose,
            route,
            frequency: input.frequency,
            days: input.days,
            quantity: input.quantity,
            unit,
            unit_price: input.unit_price,
            amount,
        })
    }

    /// How it is taken, in one line: 0.5g 口服 每日三次 ×7天.
    pub fn usage(&self) -> String {
        let mut s = self.dose.clone();
        if let Some(r) = &self.route {
            s.push(' ');
            s.push_str(r);
        }
        s.push(' ');
        s.push_str(self.frequency.label());
        s.push_str(&format!(" ×{}天", self.days));
        s
    }
}

/// `price` × `quantity`, refused when it passes what the platform accepts as one amount.
pub(crate) fn line_amount(
    field: &'static str,
    item: Option<usize>,
    price: Fen,
    quantity: u32,
) -> Result<Fen, ValidationError> {
    price
        .get()
        .checked_mul(u64::from(quantity))
        .map(Fen::new)
        .filter(|a| *a <= Fen::MAX_ACCEPTED)
        .ok_or_else(|| invalid(field, item, format!("price × quantity must not exceed {}", Fen::MAX_ACCEPTED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn input() -> PrescriptionInput {
        PrescriptionInput {
            drug: " 阿莫西林胶囊 ".into(),
            spec: Some("0.25g×24粒".into()),
            dose: "0.5g".into(),
            route: Some("口服".into()),
            frequency: Frequency::Tid,
            days: 7,
            quantity: 2,
            unit: "盒".into(),
            unit_price: Fen::new(1850),
        }
    }

    #[test]
    fn a_line_is_validated_and_priced() {
        let p = PrescriptionItem::parse(&input(), 1).unwrap();
        assert_eq!((p.no, p.drug.as_str(), p.amount), (1, "阿莫西林胶囊", Fen::new(3700)));
        assert_eq!(p.usage(), "0.5g 口服 每日三次 ×7天");
        let back: PrescriptionItem = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(serde_json::to_value(Frequency::Q8h).unwrap(), "q8h");
        assert_eq!(Frequency::Tid.schedule(), Some((3, 1, "d")));
        assert_eq!(Frequency::Prn.schedule(), None);
    }

    #[test]
    fn each_field_names_itself() {
        type Break = fn(&mut PrescriptionInput);
        let cases: [(&str, Break); 7] = [
            ("prescription.drug", |i| i.drug = " ".into()),
            ("prescription.dose", |i| i.dose = "x".repeat(MAX_DOSE_CHARS + 1)),
            ("prescription.days", |i| i.days = 0),
            ("prescription.days", |i| i.days = MAX_DAYS + 1),
            ("prescription.quantity", |i| i.quantity = 0),
            ("prescription.unit", |i| i.unit = "".into()),
            ("prescription.unit_price", |i| i.unit_price = Fen::MAX_ACCEPTED),
        ];
        for (field, break_it) in cases {
            let mut i = input();
            break_it(&mut i);
            let e = PrescriptionItem::parse(&i, 4).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.starts_with("item 4: "), "{e}");
        }
        let mut no_spec = input();
        no_spec.spec = Some("  ".into());
        no_spec.route = None;
        let p = PrescriptionItem::parse(&no_spec, 1).unwrap();
        assert_eq!((p.spec, p.route), (None, None));
        assert_eq!(line_amount("f", None, Fen::new(u64::MAX), 2).unwrap_err().field, "f", "no overflow");
    }
}
