//! What reconciliation needs from a payment provider's daily bill, the same for WeChat Pay and
//! Alipay (`BillEntry`), the differences a sandbox can plant in the bills it serves
//! (`BillPlant`), and the small CSV reading and writing both bill formats share.

use chrono::NaiveDate;
use hospital_domain::Fen;
use serde::Serialize;

/// A payment or a refund as a provider's bill reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillEntry {
    pub kind: BillEntryKind,
    /// The platform's order number (`out_trade_no`).
    pub out_trade_no: String,
    /// The provider's id of the trade (WeChat `transaction_id`, Alipay `trade_no`).
    pub provider_trade_no: String,
    /// The platform's refund number (`out_refund_no` / Alipay `out_request_no`) for refunds.
    pub out_refund_no: Option<String>,
    /// What was paid (payments) or paid back (refunds), always positive.
    pub amount: Fen,
    /// When it happened, as the bill shows it (Beijing time, `yyyy-MM-dd HH:mm:ss`).
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillEntryKind {
    Payment,
    Refund,
}

/// A difference a sandbox plants in the bills it serves, so reconciliation can be tested
/// against the same wire format and the same download path as real bills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillPlant {
    /// Every line of this order is left out of the bill (a payment the provider "lost").
    Missing { out_trade_no: String },
    /// This order's payment line shows another amount.
    Amount { out_trade_no: String, amount: Fen },
    /// A paid trade the merchant never placed appears in the bill of `date`.
    Unknown { date: NaiveDate, out_trade_no: String, amount: Fen },
}

/// Why a bill could not be read. The file is refused whole: a bill half read is worse than none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable bill: {0}")]
pub struct BillError(pub String);

/// Splits one CSV line (RFC 4180 quoting: `"a,b"` and `""` inside quotes).
pub fn split_csv_line(line: &str) -> Result<Vec<String>, BillError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(BillError(format!("unterminated quote in line {line:?}")));
    }
    fields.push(field);
    Ok(fields)
}

/// One CSV field, quoted only when it has to be (a comma, a quote or a line break inside).
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_round_trip_with_quotes_and_commas() {
        let values = ["plain", "with,comma", "say \"hi\"", "", "挂号,内科"];
        let line = values.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(",");
        assert_eq!(split_csv_line(&line).unwrap(), values);
        assert_eq!(split_csv_line("a,,b").unwrap(), ["a", "", "b"]);
        assert!(split_csv_line("\"open,b").is_err());
    }
}
