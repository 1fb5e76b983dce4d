//! WeChat Pay's daily trade bill (交易账单) as `/v3/bill/tradebill` + `download_url` serve it:
//! UTF-8 CSV with CRLF lines, a header line, one line per payment and per refund with every
//! field prefixed by a backtick (so spreadsheets keep long numbers as text), then the summary
//! header `总交易单数,...` and its line. With `tar_type=GZIP` the file comes gzip-compressed; the
//! `hash_value` (SHA1) is of the uncompressed file. Layout per WeChat Pay's 《交易账单文件格式说明》
//! (pay.weixin.qq.com/docs/merchant/products/bill-download/format-trade.html) and 《下载账单》
//! (pay.weixin.qq.com/doc/v3/merchant/4012810615: the download answer carries no signature, so
//! the hash is the integrity check). One module renders (the sandbox) and parses (the client).

use std::io::Read;

use flate2::read::GzDecoder;
use hospital_domain::Fen;
use sha1::{Digest, Sha1};

use crate::bill::{csv_field, split_csv_line, BillEntry, BillEntryKind, BillError};
use crate::yuan::{parse_signed_yuan, signed_fen_to_yuan};

/// The ALL bill's columns, in WeChat's order.
pub const HEADER: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];
const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";
/// A bill is a few MiB; a download inflating past this is refused.
pub const MAX_BILL_BYTES: usize = 256 << 20;

/// One line of the bill. Amounts in fen; the fee in 1/100000 yuan as WeChat writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatBillRow {
    pub time: String,
    pub appid: String,
    pub mchid: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub openid: String,
    pub trade_type: String,
    /// `SUCCESS` for payments, `REFUND` for refunds (and others WeChat may add).
    pub trade_state: String,
    /// 应结订单金额 (0 on refund lines).
    pub settlement_total: Fen,
    /// 微信退款单号 / 商户退款单号 (refund lines).
    pub refund_id: Option<String>,
    pub out_refund_no: Option<String>,
    /// 退款金额
    pub refund: Fen,
    pub refund_status: String,
    pub description: String,
    /// 手续费 in 1/100000 yuan (`0.05940` -> 5940), negative when returned with a refund.
    pub fee: i64,
    /// 订单金额
    pub total: Fen,
    /// 申请退款金额
    pub requested_refund: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WechatBill {
    pub rows: Vec<WechatBillRow>,
}

fn fee_text(fee: i64) -> String {
    let sign = if fee < 0 { "-" } else { "" };
    let abs = fee.unsigned_abs();
    format!("{sign}{}.{:05}", abs / 100_000, abs % 100_000)
}

fn parse_fee(s: &str) -> Option<i64> {
    let (negative, digits) = s.strip_prefix('-').map(|d| (true, d)).unwrap_or((false, s));
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || frac.len() > 5 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = whole.parse::<i64>().ok()?.checked_mul(100_000)?.checked_add(format!("{frac:0<5}").parse::<i64>().ok()?)?;
    Some(if negative { -v } else { v })
}

fn yuan(fen: Fen) -> String {
    signed_fen_to_yuan(i64::from(fen))
}

impl WechatBill {
    pub fn entries(&self) -> Vec<BillEntry> {
        self.rows
            .iter()
            .map(|r| {
                let refund = r.trade_state == "REFUND";
                BillEntry {
                    kind: if refund { BillEntryKind::Refund } else { BillEntryKind::Payment },
                    out_trade_no: r.out_trade_no.clone(),
                    provider_trade_no: r.transaction_id.clone(),
                    out_refund_no: r.out_refund_no.clone(),
                    amount: if refund { r.requested_refund } else { r.total },
                    time: r.time.clone(),
                }
            })
            .collect()
    }

    /// The CSV text WeChat serves (before compression).
    pub fn to_csv(&self) -> String {
        let mut out = HEADER.join(",");
        out.push_str("\r\n");
        let tick = |v: &str| csv_field(&format!("`{v}"));
        for r in &self.rows {
            let fields = [
                r.time.clone(),
                r.appid.clone(),
                r.mchid.clone(),
                "0".into(),
                String::new(),
                r.transaction_id.clone(),
                r.out_trade_no.clone(),
                r.openid.clone(),
                r.trade_type.clone(),
                r.trade_state.clone(),
                "OTHERS".into(),
                "CNY".into(),
                yuan(r.settlement_total),
                "0.00".into(),
                r.refund_id.clone().unwrap_or_else(|| "0".into()),
                r.out_refund_no.clone().unwrap_or_else(|| "0".into()),
                yuan(r.refund),
                "0.00".into(),
                if r.refund_id.is_some() { "ORIGINAL".into() } else { String::new() },
                r.refund_status.clone(),
                r.description.clone(),
                String::new(),
                fee_text(r.fee),
                "0.60%".into(),
                yuan(r.total),
                yuan(r.requested_refund),
                String::new(),
            ];
            out.push_str(&fields.iter().map(|f| tick(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        let sum = |f: fn(&WechatBillRow) -> u64| self.rows.iter().map(f).sum::<u64>();
        out.push_str(SUMMARY_HEADER);
        out.push_str("\r\n");
        let summary = [
            self.rows.len().to_string(),
            yuan(Fen::new(sum(|r| r.settlement_total.get()))),
            yuan(Fen::new(sum(|r| r.refund.get()))),
            "0.00".into(),
            fee_text(self.rows.iter().map(|r| r.fee).sum()),
            yuan(Fen::new(sum(|r| r.total.get()))),
            yuan(Fen::new(sum(|r| r.requested_refund.get()))),
        ];
        out.push_str(&summary.iter().map(|f| tick(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
        out
    }
}

/// SHA1 of the (uncompressed) bill, lower-case hex, as `hash_value` gives it.
pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What the sandbox serves: the bill gzipped, as WeChat Pay sends it.
#[cfg(any(test, feature = "sandbox"))]
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, BillError> {
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).map_err(|e| BillError(e.to_string()))?;
    encoder.finish().map_err(|e| BillError(e.to_string()))
}

/// Inflates a gzip download, refusing anything past [`MAX_BILL_BYTES`].
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, BillError> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_BILL_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BillError(format!("not a gzip bill: {e}")))?;
    if out.len() > MAX_BILL_BYTES {
        return Err(BillError("bill larger than 256 MiB".into()));
    }
    Ok(out)
}

fn untick(field: &str) -> String {
    field.trim().strip_prefix('`').unwrap_or(field.trim()).trim().to_string()
}

/// Parses the uncompressed bill; the summary line's count and totals must match the lines read.
pub fn parse(bytes: &[u8]) -> Result<WechatBill, BillError> {
    let text = std::str::from_utf8(bytes).map_err(|_| BillError("the bill is not UTF-8".into()))?;
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty());
    let header: Vec<String> = split_csv_line(lines.next().ok_or_else(|| BillError("empty bill".into()))?)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| BillError(format!("no column {name}")));
    let c = [
        "交易时间",
        "公众账号ID",
        "商户号",
        "微信订单号",
        "商户订单号",
        "用户标识",
        "交易类型",
        "交易状态",
        "应结订单金额",
        "微信退款单号",
        "商户退款单号",
        "退款金额",
        "退款状态",
        "商品名称",
        "手续费",
        "订单金额",
        "申请退款金额",
    ]
    .map(col);
    let mut idx = [0usize; 17];
    for (i, r) in c.into_iter().enumerate() {
        idx[i] = r?;
    }
    let mut rows = Vec::new();
    let mut summary = None;
    while let Some(line) = lines.next() {
        if line.starts_with("总交易单数") {
            summary = lines.next().map(split_csv_line).transpose()?;
            break;
        }
        let f = split_csv_line(line)?;
        let get = |i: usize| f.get(idx[i]).map(|v| untick(v)).unwrap_or_default();
        let fen = |i: usize| {
            let v = get(i);
            parse_signed_yuan(&v)
                .and_then(|n| u64::try_from(n).ok())
                .map(Fen::new)
                .ok_or_else(|| BillError(format!("{} {v:?} is not an amount", HEADER.get(idx[i]).unwrap_or(&"?"))))
        };
        let optional = |i: usize| Some(get(i)).filter(|v| !v.is_empty() && v != "0");
        rows.push(WechatBillRow {
            time: get(0),
            appid: get(1),
            mchid: get(2),
            transaction_id: get(3),
            out_trade_no: get(4),
            openid: get(5),
            trade_type: get(6),
            trade_state: get(7),
            settlement_total: fen(8)?,
            refund_id: optional(9),
            out_refund_no: optional(10),
            refund: fen(11)?,
            refund_status: get(12),
            description: get(13),
            fee: parse_fee(&get(14)).ok_or_else(|| BillError(format!("手续费 {:?} is not an amount", get(14))))?,
            total: fen(15)?,
            requested_refund: fen(16)?,
        });
    }
    let summary = summary.ok_or_else(|| BillError("no summary line (truncated bill)".into()))?;
    let bill = WechatBill { rows };
    let count: usize = summary
        .first()
        .map(|v| untick(v))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BillError("bad summary".into()))?;
    let stated = |i: usize| summary.get(i).map(|v| untick(v)).and_then(|v| parse_signed_yuan(&v));
    let settlement: u64 = bill.rows.iter().map(|r| r.settlement_total.get()).sum();
    let refunds: u64 = bill.rows.iter().map(|r| r.refund.get()).sum();
    if count != bill.rows.len()
        || stated(1) != i64::try_from(settlement).ok()
        || stated(2) != i64::try_from(refunds).ok()
    {
        return Err(BillError(format!(
            "the summary ({count} lines) does not match the {} lines read",
            bill.rows.len()
        )));
    }
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of WeChat's documented sample: a payment, then its refund.
    #[test]
    fn parses_a_bill_in_wechats_format_and_round_trips() {
        let sample = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n\
`2026-09-24 10:00:00,`wx123,`1900000001,`0,`,`4200001,`pay_w1,`o1,`JSAPI,`SUCCESS,`OTHERS,`CNY,`9.90,`0.00,`0,`0,`0.00,`0.00,`,`,`Lily,`,`0.05940,`0.60%,`9.90,`0.00,`\r\n\
`2026-09-24 11:00:00,`wx123,`1900000001,`0,`,`4200001,`pay_w1,`o1,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`500001,`rfd_1,`9.90,`0.00,`ORIGINAL,`SUCCESS,`Lily,`,`-0.05940,`0.60%,`9.90,`9.90,`\r\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n\
`2,`9.90,`9.90,`0.00,`0.00000,`19.80,`9.90\r\n";
        let bill = parse(sample.as_bytes()).unwrap();
        assert_eq!(bill.rows.len(), 2);
        assert_eq!((bill.rows[0].fee, bill.rows[1].fee), (5940, -5940));
        let entries = bill.entries();
        assert_eq!(
            (entries[0].kind, entries[0].amount, entries[0].out_refund_no.as_deref()),
            (BillEntryKind::Payment, Fen::new(990), None)
        );
        assert_eq!(
            (entries[1].kind, entries[1].amount, entries[1].out_refund_no.as_deref()),
            (BillEntryKind::Refund, Fen::new(990), Some("rfd_1"))
        );
        assert_eq!(parse(bill.to_csv().as_bytes()).unwrap(), bill);
        assert_eq!(parse(&gunzip(&gzip(bill.to_csv().as_bytes()).unwrap()).unwrap()).unwrap(), bill);
        // SHA1 known answer ("abc", FIPS 180).
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn refuses_truncated_or_inconsistent_bills() {
        let bill = WechatBill {
            rows: vec![WechatBillRow {
                time: "2026-09-24 10:00:00".into(),
                appid: "wx1".into(),
                mchid: "1900000001".into(),
                transaction_id: "4200001".into(),
                out_trade_no: "A1".into(),
                openid: "o".into(),
                trade_type: "JSAPI".into(),
                trade_state: "SUCCESS".into(),
                settlement_total: Fen::new(100),
                refund_id: None,
                out_refund_no: None,
                refund: Fen::ZERO,
                refund_status: String::new(),
                description: "挂号,内科".into(),
                fee: 60,
                total: Fen::new(100),
                requested_refund: Fen::ZERO,
            }],
        };
        let csv = bill.to_csv();
        assert_eq!(parse(csv.as_bytes()).unwrap(), bill);
        let cut = &csv[..csv.find("总交易单数").unwrap()];
        assert!(parse(cut.as_bytes()).unwrap_err().0.contains("truncated"));
        assert!(parse(csv.replace("`1,`1.00", "`2,`1.00").as_bytes()).is_err());
        assert!(parse(csv.replace("`SUCCESS,`OTHERS,`CNY,`1.00", "`SUCCESS,`OTHERS,`CNY,`1.0x").as_bytes()).is_err());
        assert!(gunzip(b"not gzip").is_err());
    }
}
