//! The reconciler (对账, PAY-4): for one business day, each provider's bill (WeChat Pay's trade
//! bill `/v3/bill/tradebill` with `bill_type=ALL`, payments and refunds, downloaded and checked
//! against its SHA1; Alipay's `alipay.data.dataservice.bill.downloadurl.query` archive; the
//! insurance centre's settlement list) matched line by line with the ledger's movements of the
//! day (`domain::reconcile`). Each difference found is looked into once by asking the provider:
//! a payment the provider has and we missed (its notification lost) is applied through the
//! order's payment actor, the order's only writer, with a notification id derived from the
//! provider's trade, so however often the day is run the money is booked once; a payment seen on
//! another day is a timing difference (跨日); the rest is left for finance staff with what the
//! provider said. Runs are back-office documents (one partition per month, one document per day
//! and provider), written compare-and-set so a run and a person closing a difference never undo
//! each other. The durable job `reconcile:<date>` runs the day the next morning and schedules
//! the next; staff can run any day again (`POST /api/v1/admin/reconciliation/runs`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use hospital_domain::jobs::Job;
use hospital_domain::ledger::{Movement, Provider};
use hospital_domain::order::{Order, OrderStatus};
use hospital_domain::reconcile::{
    carry_over, reconcile, Difference, DifferenceKind, DifferenceStatus, OurLine, ReconRun, RunStatus, TheirLine,
};
use hospital_domain::time::HospitalZone;
use hospital_domain::Fen;
use hospital_integrations::alipay::{self, Alipay};
use hospital_integrations::bill::{BillEntry, BillEntryKind};
use hospital_integrations::insurance::{RecordKind, SettlementRecord};
use hospital_integrations::wechatpay::WechatPay;
use hospital_integrations::Insurance;
use hospital_store::{DataStore, StoreError};
use std::sync::Arc;

use crate::ActorSystem;

/// When a day's bills are fetched: WeChat Pay publishes the previous day's from 10:00 (Beijing),
/// Alipay's and the centre's are ready earlier.
pub const BILL_READY_AT: NaiveTime = match NaiveTime::from_hms_opt(10, 30, 0) {
    Some(t) => t,
    None => panic!("a valid time"),
};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another writer kept changing the run (a person and the job at once, many times).
    #[error("the run of {0} kept changing; try again")]
    Busy(String),
    #[error("no such difference")]
    NotFound,
    #[error("the difference is already closed")]
    AlreadyClosed,
}

/// What the reconciler needs: the store, the actors (to apply what it resolves) and the
/// providers' clients (None: that provider is not used, nothing to reconcile).
#[derive(Clone)]
pub struct Reconciler {
    pub data: Arc<dyn DataStore>,
    pub system: ActorSystem,
    pub wechat_pay: Option<Arc<dyn WechatPay>>,
    pub alipay: Option<Arc<dyn Alipay>>,
    pub insurance: Option<Arc<dyn Insurance>>,
    pub zone: HospitalZone,
}

/// A run's document: partition by month, id by day and provider.
fn doc_kind(date: NaiveDate) -> String {
    format!("recon_runs:{}", date.format("%Y-%m"))
}

fn doc_id(date: NaiveDate, provider: Provider) -> String {
    format!("{date}:{}", provider.as_str())
}

fn their_line(e: BillEntry) -> TheirLine {
    TheirLine {
        refund: e.kind == BillEntryKind::Refund,
        out_trade_no: e.out_trade_no,
        out_refund_no: if e.kind == BillEntryKind::Refund { e.out_refund_no } else { None },
        provider_no: e.provider_trade_no,
        amount: e.amount,
        time: e.time,
    }
}

fn settlement_line(r: SettlementRecord) -> TheirLine {
    let refund = r.kind == RecordKind::Refund;
    TheirLine {
        refund,
        out_trade_no: r.med_org_ord,
        out_refund_no: refund.then_some(r.reference),
        provider_no: r.pay_ord_id,
        // What the centre moved: the fund's and the personal account's parts (the cash part is
        // in WeChat Pay's or Alipay's bill).
        amount: r.amounts.fund.checked_add(r.amounts.account).unwrap_or(Fen::MAX_ACCEPTED),
        time: r.at.to_rfc3339(),
    }
}

fn provider_label(p: Provider) -> &'static str {
    match p {
        Provider::WechatPay => "微信支付",
        Provider::Alipay => "支付宝",
        Provider::Insurance => "医保中心",
    }
}

/// What a provider's query says about a trade.
enum Queried {
    Paid { trade_no: String, amount: Fen, at: Option<DateTime<Utc>> },
    NotPaid(String),
    Unknown,
}

impl Reconciler {
    /// The providers configured, in a fixed order.
    pub fn providers(&self) -> Vec<Provider> {
        let mut out = Vec::new();
        if self.wechat_pay.is_some() {
            out.push(Provider::WechatPay);
        }
        if self.alipay.is_some() {
            out.push(Provider::Alipay);
        }
        if self.insurance.is_some() {
            out.push(Provider::Insurance);
        }
        out
    }

    /// The runs of one day, by provider.
    pub async fn runs_of(&self, date: NaiveDate) -> Result<Vec<ReconRun>, ReconcileError> {
        let prefix = format!("{date}:");
        let mut out = Vec::new();
        for d in self.data.docs(&doc_kind(date)).await? {
            if !d.id.starts_with(&prefix) {
                continue;
            }
            match serde_json::from_str::<ReconRun>(&d.body) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(id = %d.id, error = %e, "undecodable reconciliation run skipped"),
            }
        }
        Ok(out)
    }

    /// The runs of `from..=to`, by day then provider (one partition read per month).
    pub async fn runs_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<ReconRun>, ReconcileError> {
        let mut out = Vec::new();
        let mut month = from.with_day(1).unwrap_or(from);
        while month <= to {
            for d in self.data.docs(&doc_kind(month)).await? {
                match serde_json::from_str::<ReconRun>(&d.body) {
                    Ok(r) if r.date >= from && r.date <= to => out.push(r),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(id = %d.id, error = %e, "undecodable reconciliation run skipped"),
                }
            }
            month = month.checked_add_months(chrono::Months::new(1)).unwrap_or(NaiveDate::MAX);
        }
        out.sort_by_key(|r| (r.date, r.provider));
        Ok(out)
    }

    async fn stored(&self, date: NaiveDate, provider: Provider) -> Result<Option<(ReconRun, u64)>, ReconcileError> {
        let Some(d) = self.data.doc(&doc_kind(date), &doc_id(date, provider)).await? else { return Ok(None) };
        let run = serde_json::from_str(&d.body)
            .map_err(|source| StoreError::Decode { table: "backoffice_documents", source })?;
        Ok(Some((run, d.version)))
    }

    /// Writes a run, keeping what finance closed while it ran (compare-and-set, retried).
    async fn save(&self, mut run: ReconRun) -> Result<ReconRun, ReconcileError> {
        for _ in 0..5 {
            let (latest, version) = match self.stored(run.date, run.provider).await? {
                Some((r, v)) => (Some(r), v),
                None => (None, 0),
            };
            if let Some(latest) = &latest {
                for d in run.differences.iter_mut() {
                    if let Some(l) =
                        latest.differences.iter().find(|l| l.id == d.id && l.status == DifferenceStatus::Closed)
                    {
                        *d = l.clone();
                    }
                }
            }
            let body = serde_json::to_string(&run).expect("a run serialises");
            if self.data.put_doc(&doc_kind(run.date), &doc_id(run.date, run.provider), &body, version).await? {
                return Ok(run);
            }
        }
        Err(ReconcileError::Busy(run.date.to_string()))
    }

    /// Reconciles every configured provider for `date` (again, if it ran before: nothing is
    /// applied or listed twice). The runs, one per provider; a provider whose bill could not be
    /// had is a `Failed` run.
    pub async fn run_day(&self, date: NaiveDate) -> Result<Vec<ReconRun>, ReconcileError> {
        let movements = self.data.movements_of_day(date).await?;
        let mut runs = Vec::new();
        for provider in self.providers() {
            runs.push(self.run_provider(provider, date, &movements).await?);
        }
        metrics::counter!("reconciliation_runs_total").increment(runs.len() as u64);
        Ok(runs)
    }

    async fn run_provider(
        &self,
        provider: Provider,
        date: NaiveDate,
        movements: &[Movement],
    ) -> Result<ReconRun, ReconcileError> {
        let previous = self.stored(date, provider).await?.map(|(r, _)| r);
        let attempts = previous.as_ref().map(|p| p.attempts).unwrap_or(0).saturating_add(1);
        let previous_diffs = previous.map(|p| p.differences).unwrap_or_default();
        let mut run = ReconRun::started(provider, date, attempts, Utc::now());
        match self.their_lines(provider, date).await {
            Err(e) => {
                tracing::warn!(provider = provider.as_str(), %date, error = %e, "bill not available; reconciliation retried later");
                run.status = RunStatus::Failed;
                run.error = Some(e);
                run.differences = previous_diffs;
            }
            Ok(theirs) => {
                let ours = OurLine::of(provider, movements);
                let (found, matched) = reconcile(provider, &ours, &theirs);
                let mut differences = carry_over(&previous_diffs, found);
                for d in differences.iter_mut().filter(|d| d.is_open()) {
                    self.look_into(d, date).await;
                }
                run.their_lines = theirs.len();
                run.our_lines = ours.len();
                run.matched = matched;
                run.differences = differences;
                run.status = RunStatus::Done;
                let open = run.differences.iter().filter(|d| d.status == DifferenceStatus::ForFinance).count();
                tracing::info!(provider = provider.as_str(), %date, matched, differences = run.differences.len(), for_finance = open, "reconciled");
            }
        }
        run.finished_at = Some(Utc::now());
        self.save(run).await
    }

    async fn their_lines(&self, provider: Provider, date: NaiveDate) -> Result<Vec<TheirLine>, String> {
        match provider {
            Provider::WechatPay => {
                let client = self.wechat_pay.as_ref().ok_or("WeChat Pay is not configured")?;
                let bill = client.trade_bill(date).await.map_err(|e| e.to_string())?;
                Ok(bill.entries().into_iter().map(their_line).collect())
            }
            Provider::Alipay => {
                let client = self.alipay.as_ref().ok_or("Alipay is not configured")?;
                let bill = client.download_bill(date).await.map_err(|e| e.to_string())?;
                Ok(bill.entries().into_iter().map(their_line).collect())
            }
            Provider::Insurance => {
                let client = self.insurance.as_ref().ok_or("the insurance platform is not configured")?;
                let list = client.settlement_list(date).await.map_err(|e| e.to_string())?;
                Ok(list.into_iter().map(settlement_line).collect())
            }
        }
    }

    /// Asks the provider about a payment.
    async fn query(&self, provider: Provider, out_trade_no: &str) -> Result<Queried, String> {
        match provider {
            Provider::WechatPay => {
                let Some(client) = &self.wechat_pay else { return Ok(Queried::Unknown) };
                match client.query_order(out_trade_no).await {
                    Ok(t) if t.is_paid() => Ok(Queried::Paid {
                        trade_no: t.transaction_id.clone().unwrap_or_default(),
                        amount: t.amount.total,
                        at: t.success_time.map(|t| t.with_timezone(&Utc)),
                    }),
                    Ok(t) => Ok(Queried::NotPaid(format!("{:?}", t.trade_state))),
                    Err(e) if e.is_order_not_found() => Ok(Queried::NotPaid("无此订单".into())),
                    Err(e) => Err(e.to_string()),
                }
            }
            Provider::Alipay => {
                let Some(client) = &self.alipay else { return Ok(Queried::Unknown) };
                match client.query_trade(out_trade_no).await {
                    Ok(t) if t.trade_status.is_paid() => Ok(Queried::Paid {
                        trade_no: t.trade_no,
                        amount: t.total_amount,
                        at: t.send_pay_date.map(|t| t.with_timezone(&Utc)),
                    }),
                    Ok(t) => Ok(Queried::NotPaid(t.trade_status.as_str().to_string())),
                    Err(e) if e.api_code() == Some(alipay::sub_code::TRADE_NOT_EXIST) => {
                        Ok(Queried::NotPaid("无此交易".into()))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Provider::Insurance => Ok(Queried::Unknown),
        }
    }

    /// Looks into one open difference: resolves it when the provider confirms what our order
    /// can take, else hands it to finance with what the provider said. A failed query leaves it
    /// open for the next run.
    async fn look_into(&self, d: &mut Difference, date: NaiveDate) {
        let label = provider_label(d.provider);
        if d.refund || d.provider == Provider::Insurance {
            d.status = DifferenceStatus::ForFinance;
            d.note = format!("{label}{}差异，需人工核对", if d.refund { "退款" } else { "结算" });
            return;
        }
        let queried = match self.query(d.provider, &d.out_trade_no).await {
            Ok(q) => q,
            Err(e) => {
                d.note = format!("向{label}查询失败，下次对账再查：{e}");
                return;
            }
        };
        let other_day = |at: &Option<DateTime<Utc>>| at.map(|t| self.zone.local_date(t)).filter(|day| *day != date);
        match (d.kind, queried) {
            (DifferenceKind::MissingHere, Queried::Paid { trade_no, amount, at }) if Some(amount) == d.theirs => {
                self.apply_missed_payment(d, &trade_no, amount, at).await
            }
            (DifferenceKind::MissingThere, Queried::Paid { amount, at, .. })
                if Some(amount) == d.ours && other_day(&at).is_some() =>
            {
                d.status = DifferenceStatus::Resolved;
                d.note = format!(
                    "跨日：{label}查询确认已支付，支付日为 {}，在该日账单中",
                    other_day(&at).map(|d| d.to_string()).unwrap_or_default()
                );
            }
            (_, Queried::Paid { amount, .. }) => {
                d.status = DifferenceStatus::ForFinance;
                d.note = format!("{label}查询：已支付 {amount}，与账单或本院记录不符，需人工核对");
            }
            (_, Queried::NotPaid(state)) => {
                d.status = DifferenceStatus::ForFinance;
                d.note = format!("{label}查询：未支付（{state}），需人工核对");
            }
            (_, Queried::Unknown) => {
                d.status = DifferenceStatus::ForFinance;
                d.note = format!("{label}差异，需人工核对");
            }
        }
    }

    /// A payment the provider confirms and we have no record of (its notification was lost):
    /// applied through the order's payment actor exactly as the notification would have been,
    /// under a notification id derived from the provider's trade, so it is booked once.
    async fn apply_missed_payment(&self, d: &mut Difference, trade_no: &str, amount: Fen, at: Option<DateTime<Utc>>) {
        let label = provider_label(d.provider);
        let for_finance = |d: &mut Difference, why: String| {
            d.status = DifferenceStatus::ForFinance;
            d.note = why;
        };
        let Some(order_id) = Order::id_of_out_trade_no(&d.out_trade_no) else {
            return for_finance(d, format!("{label}有此笔支付，但订单号不是本平台的"));
        };
        match self.data.order(order_id).await {
            Ok(Some(_)) => {}
            Ok(None) => return for_finance(d, format!("{label}有此笔支付，但本平台无此订单")),
            Err(e) => {
                d.note = format!("读取订单失败，下次对账再试：{e}");
                return;
            }
        }
        let applied = match d.provider {
            Provider::WechatPay => {
                let Some(client) = &self.wechat_pay else { return };
                let transaction = match client.query_order(&d.out_trade_no).await {
                    Ok(t) => t,
                    Err(e) => {
                        d.note = format!("向{label}查询失败，下次对账再查：{e}");
                        return;
                    }
                };
                self.system
                    .payment_notified(order_id, format!("reconcile:{trade_no}"), transaction)
                    .await
                    .map_err(|e| e.to_string())
            }
            Provider::Alipay => {
                let paid_at = at.unwrap_or_else(Utc::now).with_timezone(&alipay::beijing());
                let n = alipay::Notification {
                    notify_id: format!("reconcile:{trade_no}"),
                    notify_type: "trade_status_sync".into(),
                    notify_time: paid_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    app_id: String::new(),
                    trade_no: trade_no.to_string(),
                    out_trade_no: d.out_trade_no.clone(),
                    trade_status: alipay::TradeStatus::TradeSuccess,
                    total_amount: amount,
                    receipt_amount: Some(amount),
                    buyer_pay_amount: Some(amount),
                    buyer_id: None,
                    buyer_open_id: None,
                    seller_id: None,
                    refund_fee: None,
                    out_biz_no: None,
                    gmt_payment: Some(paid_at.fixed_offset()),
                    gmt_refund: None,
                    gmt_close: None,
                };
                self.system.alipay_notified(order_id, n).await.map_err(|e| e.to_string())
            }
            Provider::Insurance => return,
        };
        match applied {
            Ok(o)
                if o.paid_trade().and_then(|t| t.trade_no.as_deref()) == Some(trade_no)
                    && matches!(
                        o.status,
                        OrderStatus::Paid | OrderStatus::Paying | OrderStatus::Refunding | OrderStatus::Refunded
                    ) =>
            {
                d.status = DifferenceStatus::Resolved;
                d.note = format!("支付通知缺失：已向{label}查询确认，订单已按查询结果入账（{}）", o.status.as_str());
                metrics::counter!("reconciliation_resolved_total").increment(1);
            }
            Ok(o) => for_finance(
                d,
                format!(
                    "{label}查询确认已支付，但订单状态为 {}（可能已由其他渠道支付），需人工处理",
                    o.status.as_str()
                ),
            ),
            Err(e) => for_finance(d, format!("{label}查询确认已支付，但入账被拒：{e}")),
        }
    }

    /// Finance staff close a difference with a note (the caller audits it).
    pub async fn close_difference(
        &self,
        date: NaiveDate,
        id: &str,
        note: &str,
        by: &str,
    ) -> Result<Difference, ReconcileError> {
        let provider = id.split(':').next().and_then(Provider::parse).ok_or(ReconcileError::NotFound)?;
        for _ in 0..5 {
            let (mut run, version) = self.stored(date, provider).await?.ok_or(ReconcileError::NotFound)?;
            let d = run.differences.iter_mut().find(|d| d.id == id).ok_or(ReconcileError::NotFound)?;
            if !d.close(note, by, Utc::now()) {
                return Err(ReconcileError::AlreadyClosed);
            }
            let closed = d.clone();
            let body = serde_json::to_string(&run).expect("a run serialises");
            if self.data.put_doc(&doc_kind(date), &doc_id(date, provider), &body, version).await? {
                return Ok(closed);
            }
        }
        Err(ReconcileError::Busy(date.to_string()))
    }

    /// The job of `date`: due the next day at [`BILL_READY_AT`] (the hospital's time).
    pub fn job_for(&self, date: NaiveDate, now: DateTime<Utc>) -> Job {
        let next = date.succ_opt().unwrap_or(date);
        Job::reconcile(date, self.zone.to_utc(next, BILL_READY_AT), now)
    }

    /// Makes sure yesterday's job exists (at start-up): from then on each run schedules the next.
    pub async fn ensure_scheduled(&self) -> Result<(), StoreError> {
        if self.providers().is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let yesterday = self.zone.local_date(now) - Duration::days(1);
        let job = self.job_for(yesterday, now);
        // A day already reconciled (its run stored) is not scheduled again.
        if self.data.doc(&doc_kind(yesterday), &doc_id(yesterday, self.providers()[0])).await?.is_some() {
            return self.schedule_next(yesterday).await;
        }
        self.data.schedule_job(&job).await.map(|_| ())
    }

    /// After a day's job: the next day's.
    pub async fn schedule_next(&self, date: NaiveDate) -> Result<(), StoreError> {
        let next = date.succ_opt().unwrap_or(date);
        self.data.schedule_job(&self.job_for(next, Utc::now())).await.map(|_| ())
    }

    /// The job's work: the day reconciled (a failed bill fails the job, which retries with
    /// backoff), then the next day scheduled.
    pub async fn run_job(&self, date: NaiveDate) -> Result<(), String> {
        let runs = self.run_day(date).await.map_err(|e| e.to_string())?;
        self.schedule_next(date).await.map_err(|e| e.to_string())?;
        let failed: Vec<String> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Failed)
            .map(|r| format!("{}: {}", r.provider.as_str(), r.error.clone().unwrap_or_default()))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }
}
