//! Alipay's daily trade bill (业务账单, `bill_type=trade`) as `bill_download_url` serves it: a ZIP
//! (entry names in GBK) holding `{PID}_{yyyyMMdd}_业务明细.csv` and `..._业务明细(汇总).csv`, both
//! GBK text with CRLF lines, `#` comment lines around the table, and each field followed by a
//! tab (so spreadsheets keep 28-digit trade numbers as text). Layout as documented for
//! `alipay.data.dataservice.bill.downloadurl.query` (open.alitrip.com/docs/doc.htm?articleId=104674,
//! the English edition of Alipay's API page) and as bill parsers in the wild read it: the table
//! sits between `#---...业务明细列表---...` and `#---...业务明细列表结束---...`, followed by
//! `#交易合计：N笔...` / `#退款合计：M笔...`. One module renders (the sandbox) and parses (the client).

use chrono::NaiveDate;
use encoding_rs::GBK;

use super::zip;
use crate::bill::{csv_field, split_csv_line, BillEntry, BillEntryKind, BillError};
use crate::yuan::{parse_signed_yuan, signed_fen_to_yuan};

const DETAIL_BEGIN: &str =
    "#-----------------------------------------业务明细列表----------------------------------------";
const DETAIL_END: &str =
    "#-----------------------------------------业务明细列表结束------------------------------------";
const SUMMARY_BEGIN: &str =
    "#-----------------------------------------业务汇总列表----------------------------------------";
const SUMMARY_END: &str =
    "#-----------------------------------------业务汇总列表结束------------------------------------";

/// The detail table's columns, in Alipay's order.
pub const DETAIL_HEADER: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];

/// `业务类型`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlipayBillKind {
    /// 交易
    Trade,
    /// 退款
    Refund,
}

/// One line of the detail table. Amounts are signed fen: refund lines are negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayBillRow {
    pub trade_no: String,
    pub out_trade_no: String,
    pub kind: AlipayBillKind,
    pub subject: String,
    pub created_at: String,
    pub finished_at: String,
    /// 对方账户 (the buyer, masked).
    pub counterparty: String,
    /// 订单金额（元）
    pub order_amount: i64,
    /// 商家实收（元）: what the merchant got (negative on refund lines).
    pub received: i64,
    /// 退款批次号/请求号: the refund's `out_request_no`.
    pub refund_request_no: Option<String>,
    /// 服务费（元）: Alipay's fee, negative when charged, positive when returned with a refund.
    pub service_fee: i64,
}

/// A day's bill for one merchant account (PID, `2088...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayBill {
    pub account: String,
    pub date: NaiveDate,
    pub rows: Vec<AlipayBillRow>,
}

impl AlipayBill {
    /// The payments and refunds, in the shape reconciliation compares.
    pub fn entries(&self) -> Vec<BillEntry> {
        self.rows
            .iter()
            .map(|r| {
                let (kind, amount) = match r.kind {
                    AlipayBillKind::Trade => (BillEntryKind::Payment, r.order_amount),
                    AlipayBillKind::Refund => (BillEntryKind::Refund, -r.received),
                };
                BillEntry {
                    kind,
                    out_trade_no: r.out_trade_no.clone(),
                    provider_trade_no: r.trade_no.clone(),
                    out_refund_no: r.refund_request_no.clone(),
                    amount: hospital_domain::Fen::new(amount.unsigned_abs()),
                    time: r.finished_at.clone(),
                }
            })
            .collect()
    }

    fn totals(&self, kind: AlipayBillKind) -> (usize, i64) {
        let rows = self.rows.iter().filter(|r| r.kind == kind);
        (rows.clone().count(), rows.map(|r| r.received).sum())
    }

    fn file_stem(&self) -> String {
        format!("{}_{}", self.account, self.date.format("%Y%m%d"))
    }

    /// The ZIP Alipay serves for this bill.
    pub fn to_zip(&self, exported_at: &str) -> Result<Vec<u8>, BillError> {
        zip::write(&[
            zip::Entry {
                name: format!("{}_业务明细.csv", self.file_stem()),
                data: gbk(&self.detail_csv(exported_at))?,
            },
            zip::Entry {
                name: format!("{}_业务明细(汇总).csv", self.file_stem()),
                data: gbk(&self.summary_csv(exported_at))?,
            },
        ])
    }

    fn preamble(&self, title: &str) -> String {
        let next = self.date.succ_opt().unwrap_or(self.date);
        format!(
            "#{title}\r\n#账号：[{}]\r\n#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]\r\n",
            self.account,
            self.date.format("%Y年%m月%d日"),
            next.format("%Y年%m月%d日")
        )
    }

    fn detail_csv(&self, exported_at: &str) -> String {
        let mut out = self.preamble("支付宝业务明细查询");
        out.push_str(DETAIL_BEGIN);
        out.push_str("\r\n");
        out.push_str(&DETAIL_HEADER.join(","));
        out.push_str("\r\n");
        for r in &self.rows {
            let kind = match r.kind {
                AlipayBillKind::Trade => "交易",
                AlipayBillKind::Refund => "退款",
            };
            let zero = "0.00".to_string();
            let fields: [String; 25] = [
                r.trade_no.clone(),
                r.out_trade_no.clone(),
                kind.into(),
                r.subject.clone(),
                r.created_at.clone(),
                r.finished_at.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                r.counterparty.clone(),
                signed_fen_to_yuan(r.order_amount),
                signed_fen_to_yuan(r.received),
                zero.clone(),
                zero.clone(),
                zero.clone(),
                zero.clone(),
                zero.clone(),
                String::new(),
                zero.clone(),
                zero.clone(),
                r.refund_request_no.clone().unwrap_or_default(),
                signed_fen_to_yuan(r.service_fee),
                zero,
                String::new(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(&format!("{f}\t"))).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out.push_str(DETAIL_END);
        out.push_str("\r\n");
        let (trades, trade_sum) = self.totals(AlipayBillKind::Trade);
        let (refunds, refund_sum) = self.totals(AlipayBillKind::Refund);
        out.push_str(&format!(
            "#交易合计：{trades}笔，商家实收共{}元，商家优惠共0.00元\r\n#退款合计：{refunds}笔，商家实收退款共{}元，商家优惠退款共0.00元\r\n#导出时间：[{exported_at}]\r\n",
            signed_fen_to_yuan(trade_sum),
            signed_fen_to_yuan(refund_sum)
        ));
        out
    }

    fn summary_csv(&self, exported_at: &str) -> String {
        let (trades, trade_sum) = self.totals(AlipayBillKind::Trade);
        let (refunds, refund_sum) = self.totals(AlipayBillKind::Refund);
        let orders: i64 = self.rows.iter().filter(|r| r.kind == AlipayBillKind::Trade).map(|r| r.order_amount).sum();
        let fees: i64 = self.rows.iter().map(|r| r.service_fee).sum();
        let mut out = self.preamble("支付宝业务汇总查询");
        out.push_str(SUMMARY_BEGIN);
        out.push_str(
            "\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,服务费（元）\r\n",
        );
        out.push_str(&format!(
            ",合计,{trades},{refunds},{},{},{}\r\n",
            signed_fen_to_yuan(orders),
            signed_fen_to_yuan(trade_sum + refund_sum),
            signed_fen_to_yuan(fees)
        ));
        out.push_str(SUMMARY_END);
        out.push_str(&format!("\r\n#导出时间：[{exported_at}]\r\n"));
        out
    }
}

fn gbk(text: &str) -> Result<Vec<u8>, BillError> {
    let (bytes, _, unmappable) = GBK.encode(text);
    if unmappable {
        return Err(BillError("bill text has characters GBK cannot encode".into()));
    }
    Ok(bytes.into_owned())
}

/// Reads the archive `bill_download_url` served: finds the detail CSV, decodes it from GBK
/// (strictly: a byte that is not GBK fails the bill) and parses every line. The
/// `#交易合计`/`#退款合计` counts must match the lines read, so a cut-off file is refused.
pub fn parse_zip(archive: &[u8]) -> Result<AlipayBill, BillError> {
    let entries = zip::read(archive)?;
    let detail = entries
        .iter()
        .find(|e| e.name.ends_with("业务明细.csv"))
        .ok_or_else(|| BillError("no 业务明细.csv in the bill archive".into()))?;
    let (text, _, malformed) = GBK.decode(&detail.data);
    if malformed {
        return Err(BillError(format!("{} is not GBK text", detail.name)));
    }
    parse_detail_csv(&text)
}

fn bracketed(line: &str) -> Option<&str> {
    let start = line.find('[')? + '['.len_utf8();
    let end = start + line[start..].find(']')?;
    Some(&line[start..end])
}

/// `#交易合计：3笔，...` -> 3
fn count_after(line: &str, label: &str) -> Option<usize> {
    let rest = line.strip_prefix(label)?;
    rest[..rest.find('笔')?].trim().parse().ok()
}

/// Parses the (already decoded) detail CSV.
pub fn parse_detail_csv(text: &str) -> Result<AlipayBill, BillError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let mut account = None;
    let mut date = None;
    for line in lines.by_ref() {
        if line.starts_with("#账号") {
            account = bracketed(line).map(str::to_string);
        } else if line.starts_with("#起始日期") {
            date = bracketed(line).and_then(|d| NaiveDate::parse_and_remainder(d, "%Y年%m月%d日").ok()).map(|(d, _)| d);
        } else if line.contains("业务明细列表") {
            break;
        }
    }
    let account = account.ok_or_else(|| BillError("no #账号 line".into()))?;
    let date = date.ok_or_else(|| BillError("no #起始日期 line".into()))?;
    let header: Vec<String> = split_csv_line(lines.next().ok_or_else(|| BillError("no table header".into()))?)?
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| BillError(format!("no column {name} in the bill")))
    };
    let [c_trade, c_out, c_kind, c_subject, c_created, c_finished, c_party, c_order, c_received, c_refund, c_fee] = [
        "支付宝交易号",
        "商户订单号",
        "业务类型",
        "商品名称",
        "创建时间",
        "完成时间",
        "对方账户",
        "订单金额（元）",
        "商家实收（元）",
        "退款批次号/请求号",
        "服务费（元）",
    ]
    .map(column);
    let (c_trade, c_out, c_kind, c_subject, c_created, c_finished, c_party, c_order, c_received, c_refund, c_fee) = (
        c_trade?,
        c_out?,
        c_kind?,
        c_subject?,
        c_created?,
        c_finished?,
        c_party?,
        c_order?,
        c_received?,
        c_refund?,
        c_fee?,
    );

    let mut rows = Vec::new();
    let mut ended = false;
    for (n, line) in lines.by_ref().enumerate() {
        if line.starts_with('#') {
            ended = line.contains("业务明细列表结束");
            if !ended {
                return Err(BillError(format!("unexpected comment inside the table: {line:?}")));
            }
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line)?;
        let get = |i: usize| fields.get(i).map(|f| f.trim().to_string()).unwrap_or_default();
        let amount = |i: usize| {
            let v = get(i);
            if v.is_empty() {
                return Ok(0);
            }
            parse_signed_yuan(&v).ok_or_else(|| BillError(format!("line {}: amount {v:?} is not yuan", n + 1)))
        };
        let kind = match get(c_kind).as_str() {
            "交易" => AlipayBillKind::Trade,
            "退款" => AlipayBillKind::Refund,
            other => return Err(BillError(format!("line {}: unknown 业务类型 {other:?}", n + 1))),
        };
        let refund_no = get(c_refund);
        rows.push(AlipayBillRow {
            trade_no: get(c_trade),
            out_trade_no: get(c_out),
            kind,
            subject: get(c_subject),
            created_at: get(c_created),
            finished_at: get(c_finished),
            counterparty: get(c_party),
            order_amount: amount(c_order)?,
            received: amount(c_received)?,
            refund_request_no: (!refund_no.is_empty()).then_some(refund_no),
            service_fee: amount(c_fee)?,
        });
    }
    if !ended {
        return Err(BillError("the table never ends (truncated bill)".into()));
    }
    let bill = AlipayBill { account, date, rows };
    let (mut trades, mut refunds) = (None, None);
    for line in lines {
        trades = trades.or_else(|| count_after(line, "#交易合计："));
        refunds = refunds.or_else(|| count_after(line, "#退款合计："));
    }
    let expected = (bill.totals(AlipayBillKind::Trade).0, bill.totals(AlipayBillKind::Refund).0);
    if (trades, refunds) != (Some(expected.0), Some(expected.1)) {
        return Err(BillError(format!(
            "the totals ({trades:?} trades, {refunds:?} refunds) do not match the {} trade and {} refund lines read",
            expected.0, expected.1
        )));
    }
    Ok(bill)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bill() -> AlipayBill {
        AlipayBill {
            account: "20881234567890120156".into(),
            date: NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
            rows: vec![
                AlipayBillRow {
                    trade_no: "2024010522001400000000000001".into(),
                    out_trade_no: "REG001".into(),
                    kind: AlipayBillKind::Trade,
                    subject: "门诊挂号,内科".into(),
                    created_at: "2024-01-05 09:00:00".into(),
                    finished_at: "2024-01-05 09:01:00".into(),
                    counterparty: "138****0000".into(),
                    order_amount: 1250,
                    received: 1250,
                    refund_request_no: None,
                    service_fee: -8,
                },
                AlipayBillRow {
                    trade_no: "2024010522001400000000000001".into(),
                    out_trade_no: "REG001".into(),
                    kind: AlipayBillKind::Refund,
                    subject: "门诊挂号,内科".into(),
                    created_at: "2024-01-05 09:00:00".into(),
                    finished_at: "2024-01-05 10:00:00".into(),
                    counterparty: "138****0000".into(),
                    order_amount: 1250,
                    received: -500,
                    refund_request_no: Some("RF1".into()),
                    service_fee: 3,
                },
            ],
        }
    }

    #[test]
    fn renders_and_parses_the_same_bill() {
        let b = bill();
        let archive = b.to_zip("2024年01月06日 09:34:48").unwrap();
        assert_eq!(parse_zip(&archive).unwrap(), b);
        let entries = b.entries();
        assert_eq!(entries[0].kind, BillEntryKind::Payment);
        assert_eq!(entries[0].amount.get(), 1250);
        assert_eq!((entries[1].kind, entries[1].amount.get()), (BillEntryKind::Refund, 500));
        assert_eq!(entries[1].out_refund_no.as_deref(), Some("RF1"));
    }

    #[test]
    fn refuses_truncated_or_inconsistent_bills() {
        let csv = bill().detail_csv("x");
        parse_detail_csv(&csv).unwrap();
        let cut = &csv[..csv.find("#-----------------------------------------业务明细列表结束").unwrap()];
        assert!(parse_detail_csv(cut).unwrap_err().0.contains("truncated"));
        let lost_line = csv.replacen("退款\t", "交易\t", 1);
        assert!(parse_detail_csv(&lost_line).unwrap_err().0.contains("do not match"));
        let bad_amount = csv.replacen("12.50\t", "12.5x\t", 1);
        assert!(parse_detail_csv(&bad_amount).unwrap_err().0.contains("not yuan"));
        assert!(parse_zip(b"garbage").is_err());
    }
}
