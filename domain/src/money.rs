//! Money as integer fen (分). Never a float: 0.1 + 0.2 is not 0.3, and a ledger must add up.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValidationError;

/// An amount of money in fen (1 yuan = 100 fen). Non-negative by construction.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
#[schema(value_type = i64)]
pub struct Fen(u64);

impl Fen {
    pub const ZERO: Fen = Fen(0);
    /// The largest amount accepted from outside (fees, refunds): ¥10,000,000.00. Far above any
    /// registration fee or bill, and below WeChat Pay's 32-bit `amount.total` (¥21,474,836.47),
    /// so an amount we accept can always be paid and refunded. Enforced where money enters
    /// (the gateway's request types); stored amounts are not re-checked.
    pub const MAX_ACCEPTED: Fen = Fen(1_000_000_000);

    pub const fn new(fen: u64) -> Self {
        Self(fen)
    }
    pub const fn get(self) -> u64 {
        self.0
    }
    /// Sum that refuses to wrap: an overflow is a bug upstream, not a large bill.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }
}

impl TryFrom<i64> for Fen {
    type Error = ValidationError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        u64::try_from(v).map(Fen).map_err(|_| ValidationError::new("amount", "must not be negative"))
    }
}

impl From<Fen> for i64 {
    fn from(f: Fen) -> i64 {
        i64::try_from(f.0).unwrap_or(i64::MAX)
    }
}

/// Shown as yuan with two decimals, e.g. `¥12.50`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_yuan_and_refuses_negative() {
        assert_eq!(Fen::new(1250).to_string(), "¥12.50");
        assert_eq!(Fen::new(5).to_string(), "¥0.05");
        assert!(Fen::try_from(-1).is_err());
        assert_eq!(serde_json::to_string(&Fen::new(300)).unwrap(), "300");
        assert!(serde_json::from_str::<Fen>("-3").is_err());
        assert_eq!(Fen::new(u64::MAX).checked_add(Fen::new(1)), None);
        assert_eq!(Fen::MAX_ACCEPTED.to_string(), "¥10000000.00");
        assert!(Fen::MAX_ACCEPTED.get() < i32::MAX as u64, "fits WeChat Pay's amount.total");
    }
}
