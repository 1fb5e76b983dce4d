//! Reconciliation (对账, PAY-4): a provider's bill of one day against our ledger's movements of
//! that day. Every line is matched by what both sides know it by (payment or refund, our order
//! number, our refund number); what is left over is a `Difference` of one of three kinds:
//!
//! - `missing_here`: the provider moved money we have no record of (a notification lost, a
//!   trade we never placed);
//! - `missing_there`: we recorded money the provider's bill does not show;
//! - `amount_differs`: both have it, with other amounts.
//!
//! The job (actors' reconciler) then asks the provider about each difference: what the
//! provider confirms and our order can take (a payment whose notification was lost) is
//! resolved by the order's actor; the rest is left for finance staff.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::{Movement, Provider};
use crate::{Fen, OrderId};

/// One line of a provider's bill (or the insurance settlement list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TheirLine {
    pub refund: bool,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    pub provider_no: String,
    pub amount: Fen,
    pub time: String,
}

/// One of our records at a provider, from a ledger movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurLine {
    pub refund: bool,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    pub amount: Fen,
    pub movement_key: String,
    pub order_id: Option<OrderId>,
}

impl OurLine {
    /// Our lines at `provider` among `movements`.
    pub fn of(provider: Provider, movements: &[Movement]) -> Vec<OurLine> {
        movements
            .iter()
            .flat_map(|m| {
                m.refs.iter().filter(move |r| r.provider == provider).map(move |r| OurLine {
                    refund: r.refund,
                    out_trade_no: r.out_trade_no.clone(),
                    out_refund_no: r.out_refund_no.clone(),
                    amount: r.amount,
                    movement_key: m.key.clone(),
                    order_id: m.order_id,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    MissingHere,
    MissingThere,
    AmountDiffers,
}

/// What became of a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceStatus {
    /// Found, not looked into yet.
    Open,
    /// The provider confirmed it and our records now agree.
    Resolved,
    /// Needs a person: finance staff.
    ForFinance,
    /// Finance staff closed it (with a note).
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Difference {
    /// Stable across runs of the same day: `<provider>:<kind>:<pay|refund>:<out_trade_no>[:<out_refund_no>]`.
    pub id: String,
    pub provider: Provider,
    pub kind: DifferenceKind,
    pub refund: bool,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    /// What we recorded, if anything.
    pub ours: Option<Fen>,
    /// What the provider's bill shows, if anything.
    pub theirs: Option<Fen>,
    pub provider_no: Option<String>,
    pub order_id: Option<OrderId>,
    pub status: DifferenceStatus,
    /// What the job or a person found out.
    pub note: String,
    /// The staff member who closed it (finance), and when.
    #[serde(default)]
    pub handled_by: Option<String>,
    #[serde(default)]
    pub handled_at: Option<DateTime<Utc>>,
}

impl Difference {
    /// Whether the job should still look into it (ask the provider).
    pub fn is_open(&self) -> bool {
        self.status == DifferenceStatus::Open
    }

    /// Finance staff close it with a note. A difference already closed is refused (`false`):
    /// the first note stands.
    pub fn close(&mut self, note: &str, by: &str, at: DateTime<Utc>) -> bool {
        if self.status == DifferenceStatus::Closed {
            return false;
        }
        self.status = DifferenceStatus::Closed;
        if !self.note.is_empty() {
            self.note.push('；');
        }
        self.note.push_str(note);
        self.handled_by = Some(by.to_string());
        self.handled_at = Some(at);
        true
    }
}

/// The differences of a new run of a day, keeping what earlier runs of the same day found out,
/// so running a day again changes nothing that was settled: a difference found again keeps its
/// status, note and handler; one no longer found that was still open or waiting for finance is
/// resolved ("the records agree now"); resolved and closed ones stay as they were.
pub fn carry_over(previous: &[Difference], found: Vec<Difference>) -> Vec<Difference> {
    let mut out: Vec<Difference> = found
        .into_iter()
        .map(|mut d| {
            if let Some(p) = previous.iter().find(|p| p.id == d.id) {
                d.status = p.status;
                d.note = p.note.clone();
                d.handled_by = p.handled_by.clone();
                d.handled_at = p.handled_at;
            }
            d
        })
        .collect();
    let gone: Vec<Difference> = previous.iter().filter(|p| !out.iter().any(|d| d.id == p.id)).cloned().collect();
    for mut p in gone {
        if matches!(p.status, DifferenceStatus::Open | DifferenceStatus::ForFinance) {
            p.status = DifferenceStatus::Resolved;
            if !p.note.is_empty() {
                p.note.push('；');
            }
            p.note.push_str("再次对账时双方记录已一致");
        }
        out.push(p);
    }
    out
}

fn key(refund: bool, out_trade_no: &str, out_refund_no: &Option<String>) -> (bool, String, String) {
    (refund, out_trade_no.to_string(), out_refund_no.clone().unwrap_or_default())
}

/// Matches every line on both sides; returns the differences and how many lines matched.
pub fn reconcile(provider: Provider, ours: &[OurLine], theirs: &[TheirLine]) -> (Vec<Difference>, usize) {
    let mut left: Vec<Option<&OurLine>> = ours.iter().map(Some).collect();
    let mut differences = Vec::new();
    let mut matched = 0;
    let diff_id = |kind: DifferenceKind, refund: bool, no: &str, refund_no: &Option<String>| {
        let kind = match kind {
            DifferenceKind::MissingHere => "missing_here",
            DifferenceKind::MissingThere => "missing_there",
            DifferenceKind::AmountDiffers => "amount_differs",
        };
        let mut id = format!("{}:{kind}:{}:{no}", provider.as_str(), if refund { "refund" } else { "pay" });
        if let Some(r) = refund_no {
            id.push(':');
            id.push_str(r);
        }
        id
    };
    for t in theirs {
        let k = key(t.refund, &t.out_trade_no, &t.out_refund_no);
        let found = left.iter_mut().find(|o| o.is_some_and(|o| key(o.refund, &o.out_trade_no, &o.out_refund_no) == k));
        match found.and_then(Option::take) {
            Some(o) if o.amount == t.amount => matched += 1,
            Some(o) => differences.push(Difference {
                id: diff_id(DifferenceKind::AmountDiffers, t.refund, &t.out_trade_no, &t.out_refund_no),
                provider,
                kind: DifferenceKind::AmountDiffers,
                refund: t.refund,
                out_trade_no: t.out_trade_no.clone(),
                out_refund_no: t.out_refund_no.clone(),
                ours: Some(o.amount),
                theirs: Some(t.amount),
                provider_no: Some(t.provider_no.clone()),
                order_id: o.order_id,
                status: DifferenceStatus::Open,
                note: String::new(),
                handled_by: None,
                handled_at: None,
            }),
            None => differences.push(Difference {
                id: diff_id(DifferenceKind::MissingHere, t.refund, &t.out_trade_no, &t.out_refund_no),
                provider,
                kind: DifferenceKind::MissingHere,
                refund: t.refund,
                out_trade_no: t.out_trade_no.clone(),
                out_refund_no: t.out_refund_no.clone(),
                ours: None,
                theirs: Some(t.amount),
                provider_no: Some(t.provider_no.clone()),
                order_id: crate::order::Order::id_of_out_trade_no(&t.out_trade_no),
                status: DifferenceStatus::Open,
                note: String::new(),
                handled_by: None,
                handled_at: None,
            }),
        }
    }
    for o in left.into_iter().flatten() {
        differences.push(Difference {
            id: diff_id(DifferenceKind::MissingThere, o.refund, &o.out_trade_no, &o.out_refund_no),
            provider,
            kind: DifferenceKind::MissingThere,
            refund: o.refund,
            out_trade_no: o.out_trade_no.clone(),
            out_refund_no: o.out_refund_no.clone(),
            ours: Some(o.amount),
            theirs: None,
            provider_no: None,
            order_id: o.order_id,
            status: DifferenceStatus::Open,
            note: String::new(),
            handled_by: None,
            handled_at: None,
        });
    }
    (differences, matched)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished (a crash leaves it so: the job runs it again).
    Running,
    Done,
    /// The bill could not be had (not yet published, the provider down): tried again later.
    Failed,
}

/// One provider's reconciliation of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReconRun {
    pub provider: Provider,
    pub date: NaiveDate,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times the job tried this day.
    pub attempts: u32,
    pub their_lines: usize,
    pub our_lines: usize,
    pub matched: usize,
    pub differences: Vec<Difference>,
    /// Why it failed (a failed run).
    pub error: Option<String>,
}

impl ReconRun {
    pub fn started(provider: Provider, date: NaiveDate, attempts: u32, at: DateTime<Utc>) -> Self {
        Self {
            provider,
            date,
            status: RunStatus::Running,
            started_at: at,
            finished_at: None,
            attempts,
            their_lines: 0,
            our_lines: 0,
            matched: 0,
            differences: vec![],
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(refund: bool, no: &str, amount: u64) -> OurLine {
        OurLine {
            refund,
            out_trade_no: no.into(),
            out_refund_no: refund.then(|| format!("R{no}")),
            amount: Fen::new(amount),
            movement_key: format!("pay:{no}"),
            order_id: None,
        }
    }

    fn theirs(refund: bool, no: &str, amount: u64) -> TheirLine {
        TheirLine {
            refund,
            out_trade_no: no.into(),
            out_refund_no: refund.then(|| format!("R{no}")),
            provider_no: format!("T{no}"),
            amount: Fen::new(amount),
            time: "2026-11-25 10:00:00".into(),
        }
    }

    #[test]
    fn one_difference_of_each_kind() {
        let ours = [ours(false, "a", 100), ours(false, "b", 200), ours(true, "a", 100), ours(false, "c", 300)];
        let theirs = [theirs(false, "a", 100), theirs(true, "a", 100), theirs(false, "b", 250), theirs(false, "d", 9)];
        let (diffs, matched) = reconcile(Provider::Alipay, &ours, &theirs);
        assert_eq!(matched, 2);
        let kinds: Vec<_> = diffs.iter().map(|d| (d.kind, d.out_trade_no.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (DifferenceKind::AmountDiffers, "b"),
                (DifferenceKind::MissingHere, "d"),
                (DifferenceKind::MissingThere, "c")
            ]
        );
        assert_eq!(diffs[0].id, "alipay:amount_differs:pay:b");
        assert_eq!((diffs[0].ours, diffs[0].theirs), (Some(Fen::new(200)), Some(Fen::new(250))));
    }

    #[test]
    fn a_day_run_again_keeps_what_was_settled() {
        let (first, _) = reconcile(
            Provider::WechatPay,
            &[ours(false, "b", 200), ours(false, "c", 300)],
            &[theirs(false, "b", 250), theirs(false, "d", 9), theirs(false, "e", 5)],
        );
        let mut first = carry_over(&[], first);
        assert_eq!(first.len(), 4);
        let at = Utc::now();
        let by_kind = |ds: &mut Vec<Difference>, no: &str| ds.iter().position(|d| d.out_trade_no == no).unwrap();
        let i = by_kind(&mut first, "b");
        assert!(first[i].close("已与微信核实", "finance", at));
        assert!(!first[i].close("again", "finance", at), "closed once");
        let i = by_kind(&mut first, "d");
        first[i].status = DifferenceStatus::Resolved;
        let i = by_kind(&mut first, "e");
        first[i].status = DifferenceStatus::ForFinance;
        // Run again: d and e now match (e.g. the payment was applied), b and c still differ.
        let (again, matched) = reconcile(
            Provider::WechatPay,
            &[ours(false, "b", 200), ours(false, "c", 300), ours(false, "d", 9), ours(false, "e", 5)],
            &[theirs(false, "b", 250), theirs(false, "d", 9), theirs(false, "e", 5)],
        );
        assert_eq!(matched, 2);
        let merged = carry_over(&first, again);
        assert_eq!(merged.len(), 4, "nothing doubled: {merged:?}");
        let get = |no: &str| merged.iter().find(|d| d.out_trade_no == no).unwrap();
        assert_eq!((get("b").status, get("b").handled_by.as_deref()), (DifferenceStatus::Closed, Some("finance")));
        assert_eq!(get("c").status, DifferenceStatus::Open);
        assert_eq!(get("d").status, DifferenceStatus::Resolved);
        assert_eq!(get("e").status, DifferenceStatus::Resolved, "agrees now");
        assert!(get("e").note.contains("一致"));
    }

    #[test]
    fn the_same_line_twice_matches_twice_only() {
        let (diffs, matched) =
            reconcile(Provider::WechatPay, &[ours(false, "a", 1)], &[theirs(false, "a", 1), theirs(false, "a", 1)]);
        assert_eq!(matched, 1);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].kind, DifferenceKind::MissingHere);
    }
}
