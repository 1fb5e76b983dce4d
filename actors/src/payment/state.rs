//! One order in memory (`PaymentState`) and what the providers' answers do to it. Every change
//! is one `PaymentWrite`: the order, the fee items it pays or frees, its ledger movement, its
//! messages and its live event, durable together before memory changes.

use chrono::{DateTime, Utc};
use hospital_domain::billing::FeeItemStatus;
use hospital_domain::ledger::{Channel, Movement};
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::{CashOutcome, InsuranceStage, Order, OrderKind, OrderStatus, RefundStatus, TradeState};
use hospital_domain::{Fen, OrderId};
use hospital_integrations::alipay::{self, Buyer, CreateTrade, WapPay};
use hospital_integrations::wechatpay::{JsapiOrder, RefundNotice, RequestPaymentParams, Transaction};
use hospital_store::{FeeItemChange, PaymentWrite, PendingEvent};
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;

/// How soon an order waiting on the centre (a settlement to confirm, a reversal to finish) is
/// looked at again.
pub(super) const SETTLE_RETRY: Duration = Duration::from_secs(3);

pub struct PaymentArgs {
    pub order: OrderId,
    pub ctx: Arc<Context>,
}

pub struct PaymentState {
    /// This actor, for its own timers (a retry shortly after a failure).
    pub(super) myself: ActorRef<PaymentMsg>,
    pub(super) order: Order,
    pub(super) ctx: Arc<Context>,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: crate::ownership::Held,
}

/// How long a refund waits before it is asked again.
const REFUND_RETRY: Duration = Duration::from_secs(30);

/// When the open-order sweeper should bring the order back to its actor: its expiry while it
/// can still be paid, soon while a refund is pending, never once settled. A registration order's
/// lapse belongs to its schedule actor (the hold), so the sweeper leaves it alone.
pub(super) fn next_check(o: &Order, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if o.returns_due().next().is_some() {
        // A second payment to give back, whatever the order's own state.
        return Some(now + chrono::Duration::from_std(REFUND_RETRY).unwrap_or_default());
    }
    match o.status {
        _ if o.kind == OrderKind::Registration => None,
        // Waiting on the insurance centre (a settlement to confirm, a reversal to finish):
        // soon, and again after a restart.
        OrderStatus::Paying if o.awaiting_settlement() || o.reversal.is_some() => {
            Some(now + chrono::Duration::from_std(SETTLE_RETRY).unwrap_or_default())
        }
        OrderStatus::Created | OrderStatus::Paying => Some(o.expires_at.max(now)),
        OrderStatus::Refunding => Some(now + chrono::Duration::from_std(REFUND_RETRY).unwrap_or_default()),
        _ => None,
    }
}

/// A change to write: the order and what goes with it.
#[derive(Default)]
pub(super) struct Change {
    pub messages: Vec<Message>,
    pub movements: Vec<Movement>,
    /// The fee items change with the order (paid, or freed).
    pub items: bool,
}

/// What a provider says about the order's trade there.
pub(super) enum Seen {
    Paid {
        trade_no: String,
        amount: Fen,
    },
    /// Not paid (open, closed, or never created there).
    Unpaid,
}

impl PaymentState {
    pub(super) fn provider(&self) -> Result<Arc<dyn hospital_integrations::wechatpay::WechatPay>, PaymentError> {
        self.ctx.wechat_pay.clone().ok_or(PaymentError::NotConfigured)
    }

    pub(super) fn alipay(&self) -> Result<Arc<dyn alipay::Alipay>, PaymentError> {
        self.ctx.alipay.clone().ok_or(PaymentError::NotConfigured)
    }

    pub(super) fn today(&self) -> chrono::NaiveDate {
        self.ctx.config.zone.local_date(Utc::now())
    }

    /// Writes the order with what goes with it; memory changes only after the write succeeded.
    /// The order's status is pushed live (PAY-4): the event is written with the change and
    /// announced once it is durable.
    pub(super) async fn save(&mut self, mut order: Order, change: Change) -> Result<(), PaymentError> {
        let now = Utc::now();
        order.next_check_at = next_check(&order, now);
        let fee_items = if change.items { self.item_changes(&order).await? } else { vec![] };
        let mut events: Vec<PendingEvent> =
            std::iter::once(PendingEvent::new(order.account_id, PersonalEvent::Order((&order).into())))
                .chain(change.messages.iter().map(PendingEvent::message))
                .collect();
        for m in &change.movements {
            for (account, delta) in m.balances() {
                // The balance after is the store's to say (inside the write): 0 until then.
                events.push(PendingEvent::new(
                    account,
                    PersonalEvent::Balance(hospital_domain::live::BalanceUpdate {
                        balance: 0,
                        key: m.key.clone(),
                        kind: m.kind,
                        amount: delta,
                        order_id: m.order_id,
                    }),
                ));
            }
        }
        let w = PaymentWrite {
            orders: vec![order.clone()],
            fee_items,
            movements: change.movements,
            messages: change.messages,
            events,
            fence: self.held.fence(),
        };
        let written = self.ctx.stores.data.apply_payment_live(w).await;
        let (_, events) = self.held.after_write(written, &self.myself, "payment", &self.order.id)?;
        self.ctx.events.durable(events);
        self.order = order;
        Ok(())
    }

    /// The order's fee items as this change leaves them: paid with it, or freed when it closed.
    async fn item_changes(&self, order: &Order) -> Result<Vec<FeeItemChange>, PaymentError> {
        let mut out = Vec::new();
        for id in order.items.iter().filter_map(|i| i.fee_item_id.as_ref()) {
            let Some(stored) = self.ctx.stores.data.fee_item(id).await? else { continue };
            if stored.order_id != Some(order.id) {
                continue;
            }
            let mut item = stored.clone();
            match order.status {
                OrderStatus::Paid | OrderStatus::Refunding | OrderStatus::Refunded => {
                    item.mark_paid(order.id, order.paid_at.unwrap_or_else(Utc::now))
                }
                OrderStatus::Closed => item.release(order.id),
                _ => {}
            }
            if item != stored && stored.status != FeeItemStatus::Paid {
                out.push(FeeItemChange { item, expected_order: Some(order.id) });
            }
        }
        Ok(out)
    }

    pub(super) fn message(&self, kind: MessageKind, title: &str, body: String) -> Message {
        Message::new(self.order.account_id, kind, title, body, Some(self.order.id.to_string()), Utc::now())
    }

    /// Makes `channel` the order's cash channel, first closing an open trade at another provider
    /// (so the patient cannot pay both), and records the trade placed there, durably, before the
    /// provider is asked: after a crash the actor knows where to look.
    async fn open_channel(&mut self, channel: Channel) -> Result<(), PaymentError> {
        if Utc::now() >= self.order.expires_at {
            return Err(PaymentError::Expired);
        }
        if self.order.insurance.is_some() && self.order.cash_due() == Fen::ZERO {
            // Nothing for a cash channel to collect: the settlement completes the order.
            return Err(PaymentError::Order(hospital_domain::order::OrderError::Channel(
                "insurance pays all of this order: nothing to pay in cash",
            )));
        }
        let others: Vec<Channel> = self
            .order
            .trades
            .iter()
            .filter(|t| t.channel != channel && t.state == TradeState::Open)
            .map(|t| t.channel)
            .collect();
        for other in others {
            if let Seen::Paid { trade_no, amount } = self.query(other).await? {
                self.cash_arrived(other, &trade_no, amount, None).await?;
                return Err(PaymentError::Order(hospital_domain::order::OrderError::InvalidState(self.order.status)));
            }
            self.close_at(other).await?;
            let mut o = self.order.clone();
            o.trade_closed(other);
            self.save(o, Change::default()).await?;
        }
        let mut o = self.order.clone();
        o.choose_channel(channel)?;
        let due = o.cash_due();
        o.open_trade(channel, due);
        if o != self.order {
            self.save(o, Change::default()).await?;
        }
        // If no notification comes, ask the provider ourselves.
        self.myself.send_after(self.ctx.config.payment_check_after, || PaymentMsg::CheckProvider);
        Ok(())
    }

    pub(super) async fn prepay(&mut self, openid: String) -> Result<RequestPaymentParams, PaymentError> {
        let provider = self.provider()?;
        self.open_channel(Channel::WechatPay).await?;
        let req = JsapiOrder {
            out_trade_no: self.order.out_trade_no(),
            description: self.order.description.clone(),
            amount: self.order.cash_due(),
            payer_openid: openid,
            time_expire: self.order.expires_at,
        };
        let r = provider.jsapi_order(req).await?;
        Ok(r.pay_params)
    }

    pub(super) async fn alipay_pay(
        &mut self,
        buyer_open_id: Option<String>,
        return_url: Option<String>,
    ) -> Result<AlipayPayment, PaymentError> {
        let client = self.alipay()?;
        self.open_channel(Channel::Alipay).await?;
        let (out_trade_no, subject, amount) =
            (self.order.out_trade_no(), self.order.description.clone(), self.order.cash_due());
        match buyer_open_id {
            Some(open_id) => {
                let t = client
                    .create_trade(CreateTrade {
                        out_trade_no: out_trade_no.clone(),
                        subject,
                        amount,
                        buyer: Buyer::OpenId(open_id),
                        time_expire: self.order.expires_at,
                    })
                    .await?;
                Ok(AlipayPayment { out_trade_no, trade_no: Some(t.trade_no), pay_url: None })
            }
            None => {
                let url = client.wap_pay_url(WapPay {
                    out_trade_no: out_trade_no.clone(),
                    subject,
                    amount,
                    time_expire: self.order.expires_at,
                    return_url,
                    quit_url: None,
                })?;
                Ok(AlipayPayment { out_trade_no, trade_no: None, pay_url: Some(url) })
            }
        }
    }

    /// A verified WeChat Pay payment (a notification, or a query that found it paid).
    pub(super) async fn paid(
        &mut self,
        notification_id: Option<String>,
        t: Transaction,
    ) -> Result<Order, PaymentError> {
        if t.out_trade_no != self.order.out_trade_no() {
            return Err(PaymentError::Mismatch("out_trade_no".into()));
        }
        if !t.is_paid() {
            return Err(PaymentError::Mismatch(format!("trade state {:?}", t.trade_state)));
        }
        let trade_no = t.transaction_id.clone().unwrap_or_default();
        self.cash_arrived(Channel::WechatPay, &trade_no, t.amount.total, notification_id).await
    }

    /// A verified Alipay notification: a payment is recorded once; a refund or a closure
    /// notification only confirms what the synchronous calls already recorded.
    pub(super) async fn alipay_notified(&mut self, n: alipay::Notification) -> Result<Order, PaymentError> {
        if n.out_trade_no != self.order.out_trade_no() {
            return Err(PaymentError::Mismatch("out_trade_no".into()));
        }
        if n.is_refund() || !n.trade_status.is_paid() {
            return Ok(self.order.clone());
        }
        self.cash_arrived(Channel::Alipay, &n.trade_no, n.total_amount, Some(n.dedupe_key())).await
    }

    /// Cash arrived through `channel`: recorded once (a repeated notification, or one for an
    /// order already paid, changes nothing; a wrong amount is refused and changes nothing).
    pub(super) async fn cash_arrived(
        &mut self,
        channel: Channel,
        trade_no: &str,
        amount: Fen,
        notification_id: Option<String>,
    ) -> Result<Order, PaymentError> {
        if let Some(id) = &notification_id {
            if self.order.notifications_seen.contains(id) {
                metrics::counter!("payment_notifications_total", "outcome" => "duplicate").increment(1);
                return Ok(self.order.clone());
            }
        }
        let now = Utc::now();
        let mut o = self.order.clone();
        let outcome = o.record_cash(channel, trade_no, amount, now)?;
        if let Some(id) = notification_id {
            o.notifications_seen.push(id);
        }
        let mut change = Change::default();
        let first = outcome == CashOutcome::First;
        if first && o.status == OrderStatus::Paid {
            change.messages.push(self.message(
                MessageKind::PaymentSuccess,
                "支付成功",
                format!("{} {} 已支付。", o.description, o.amount),
            ));
            change.movements.extend(o.payment_movement(now, self.today()));
            change.items = true;
        }
        let insured_cash = first && o.awaiting_settlement();
        if insured_cash {
            // The cash part of an insurance checkout: held in suspense until the centre settles.
            change.movements.extend(o.cash_received_movement(now, self.today()));
        }
        let extra = outcome == CashOutcome::Extra;
        if extra {
            // Money for an order already paid another way (or closed): not the order's. Held in
            // suspense and given back through its channel at once (PAY-6).
            tracing::warn!(order = %o.id, ?channel, %trade_no, "a second payment of an order arrived: giving it back");
            metrics::counter!("payment_notifications_total", "outcome" => "extra").increment(1);
            change.movements.extend(o.extra_received_movement(channel, now, self.today()));
        }
        self.save(o, change).await?;
        if extra {
            if let Err(e) = self.return_extras().await {
                tracing::warn!(order = %self.order.id, error = %e, "giving a second payment back failed; will retry");
                self.myself.send_after(REFUND_RETRY, || PaymentMsg::CheckProvider);
            }
            return Ok(self.order.clone());
        }
        metrics::counter!("payment_notifications_total", "outcome" => if first { "paid" } else { "duplicate" })
            .increment(1);
        if insured_cash {
            self.confirm_settlement().await;
        } else if first {
            self.confirm_booking().await;
        }
        Ok(self.order.clone())
    }

    /// Money arrived: confirm the booking, or refund if the place is gone.
    pub(super) async fn confirm_booking(&mut self) {
        let system = &self.ctx.system;
        // Only a registration order has a booking to confirm.
        let Some(appointment_id) = self.order.appointment_id else { return };
        let appointment = match self.ctx.stores.data.appointment(appointment_id).await {
            Ok(Some(a)) => a,
            other => {
                tracing::error!(order = %self.order.id, ?other, "paid order without its appointment");
                return;
            }
        };
        match system.confirm(appointment.doctor_id, appointment.id).await {
            Ok(_) => {}
            Err(crate::BookingError::Unavailable(e)) => {
                // Not a "no": the schedule actor could not answer. Try again shortly.
                tracing::warn!(order = %self.order.id, error = %e, "confirming the booking failed; will retry");
                self.myself.send_after(Duration::from_secs(2), || PaymentMsg::CheckProvider);
            }
            Err(e) => {
                tracing::warn!(order = %self.order.id, error = %e, "paid, but the place is gone: refunding");
                let _ = self.refund(None, "号源已释放，自动退费".into(), false).await;
            }
        }
    }

    /// Asks `channel`'s provider about the order's trade.
    pub(super) async fn query(&self, channel: Channel) -> Result<Seen, PaymentError> {
        let out_trade_no = self.order.out_trade_no();
        match channel {
            Channel::WechatPay => match self.provider()?.query_order(&out_trade_no).await {
                Ok(t) if t.is_paid() => {
                    Ok(Seen::Paid { trade_no: t.transaction_id.unwrap_or_default(), amount: t.amount.total })
                }
                Ok(_) => Ok(Seen::Unpaid),
                Err(e) if e.is_order_not_found() => Ok(Seen::Unpaid),
                Err(e) => Err(e.into()),
            },
            Channel::Alipay => match self.alipay()?.query_trade(&out_trade_no).await {
                Ok(t) if t.trade_status.is_paid() => Ok(Seen::Paid { trade_no: t.trade_no, amount: t.total_amount }),
                Ok(_) => Ok(Seen::Unpaid),
                Err(e) if e.api_code() == Some(alipay::sub_code::TRADE_NOT_EXIST) => Ok(Seen::Unpaid),
                Err(e) => Err(e.into()),
            },
            _ => Ok(Seen::Unpaid),
        }
    }

    /// Closes the order's trade at `channel`'s provider (one that never reached it is closed).
    pub(super) async fn close_at(&self, channel: Channel) -> Result<(), PaymentError> {
        let out_trade_no = self.order.out_trade_no();
        match channel {
            Channel::WechatPay => match self.provider()?.close_order(&out_trade_no).await {
                Err(e) if !e.is_order_not_found() => Err(e.into()),
                _ => Ok(()),
            },
            Channel::Alipay => match self.alipay()?.close_trade(&out_trade_no).await {
                Err(e) if e.api_code() != Some(alipay::sub_code::TRADE_NOT_EXIST) => Err(e.into()),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Closes an unpaid order, at every provider where a trade is open (a trade found paid at
    /// the last moment is a payment, not a closure), and frees its fee items.
    pub(super) async fn close(&mut self) -> Result<Order, PaymentError> {
        if !matches!(self.order.status, OrderStatus::Created | OrderStatus::Paying) {
            return Ok(self.order.clone());
        }
        let open: Vec<Channel> =
            self.order.trades.iter().filter(|t| t.state == TradeState::Open).map(|t| t.channel).collect();
        for channel in open {
            if let Seen::Paid { trade_no, amount } = self.query(channel).await? {
                return Box::pin(self.cash_arrived(channel, &trade_no, amount, None)).await;
            }
            self.close_at(channel).await?;
        }
        // A pre-settled insurance order is cancelled at the centre before it is closed here.
        self.revoke_at_centre().await?;
        let mut o = self.order.clone();
        o.close()?;
        if let Some(i) = o.insurance.as_mut().filter(|i| i.stage == InsuranceStage::PreSettled) {
            i.stage = InsuranceStage::Revoked;
        }
        let msgs = if o.kind == OrderKind::Registration {
            vec![]
        } else {
            vec![self.message(MessageKind::Refund, "订单已关闭", format!("{} 未支付，订单已关闭。", o.description))]
        };
        self.save(o, Change { messages: msgs, items: true, ..Default::default() }).await?;
        metrics::counter!("payment_orders_closed_total").increment(1);
        Ok(self.order.clone())
    }

    /// The sweeper (or the actor's timer) says the order is due: an unpaid fee order past its
    /// expiry is closed; a pending refund is asked again.
    pub(super) async fn due(&mut self) {
        if self.order.returns_due().next().is_some() {
            if let Err(e) = self.return_extras().await {
                tracing::warn!(order = %self.order.id, error = %e, "giving a second payment back failed; will retry");
            }
        }
        if self.order.kind == OrderKind::Registration {
            return;
        }
        let r = match self.order.status {
            // Cash in for an insurance checkout, or a reversal under way: finish it, expired or not.
            OrderStatus::Paying if self.order.awaiting_settlement() || self.order.reversal.is_some() => {
                self.check_provider().await;
                Ok(())
            }
            OrderStatus::Created | OrderStatus::Paying if Utc::now() >= self.order.expires_at => {
                self.close().await.map(|_| ())
            }
            OrderStatus::Created | OrderStatus::Paying => {
                self.check_provider().await;
                Ok(())
            }
            OrderStatus::Refunding => {
                self.check_provider().await;
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(order = %self.order.id, error = %e, "an order due a look could not be settled; will retry");
        }
    }

    pub(super) async fn refund(
        &mut self,
        amount: Option<Fen>,
        reason: String,
        to_balance: bool,
    ) -> Result<Order, PaymentError> {
        if matches!(self.order.status, OrderStatus::Created | OrderStatus::Paying) {
            // Nothing was paid: closing is the refund. (Boxed: closing may find the order paid,
            // which confirms or refunds, which may close: a cycle the compiler needs sized.)
            return Box::pin(self.close()).await;
        }
        let left = self.order.amount.checked_sub(self.order.refunded_total()).unwrap_or(Fen::ZERO);
        let amount = amount.unwrap_or(left);
        let refund_no = format!("R{}{:02}", &self.order.out_trade_no()[..28], self.order.refunds.len() + 1);
        let mut o = self.order.clone();
        let now = Utc::now();
        o.start_refund_to(refund_no.clone(), amount, &reason, to_balance, now)?;
        // A top-up given back takes the money out of the balance now, with the request: the
        // balance cannot be spent meanwhile, and one it no longer holds is refused here, before
        // any provider is asked. The completed refund's movement is then this one again.
        let mut change = Change::default();
        if o.kind == OrderKind::TopUp {
            change.movements.extend(o.refund_movement_of(&refund_no, true, now, self.today()));
        }
        // Durable first: after a crash the refund is retried with the same number, which the
        // provider treats as the same refund.
        self.save(o, change).await?;
        metrics::counter!("payment_refunds_total", "stage" => "requested").increment(1);
        if let Some(r) = self.order.refunds.last().filter(|r| r.to_balance && r.insurance.is_none()) {
            // Into the balance: nothing to ask of a provider, done now.
            let refund_no = r.refund_no.clone();
            self.refund_finished(&refund_no, true).await?;
            return Ok(self.order.clone());
        }
        if self.order.refunds.last().is_some_and(|r| r.insurance.is_some()) {
            // Two platforms to ask (the centre, then the cash channel): the caller is answered
            // once the refund is recorded, and the actor asks them next.
            let _ = self.myself.send_message(PaymentMsg::CheckProvider);
            return Ok(self.order.clone());
        }
        if let Err(e) = self.ask_refund(&refund_no).await {
            tracing::warn!(order = %self.order.id, error = %e, "refund request failed; will retry");
            self.myself.send_after(Duration::from_secs(5), || PaymentMsg::CheckProvider);
        }
        Ok(self.order.clone())
    }

    /// Asks the cash channel for a pending refund (again: the same refund number is the same
    /// refund). Alipay answers synchronously, so its refund completes here; WeChat Pay's
    /// completes with its `REFUND.*` notification.
    async fn ask_refund(&mut self, refund_no: &str) -> Result<(), PaymentError> {
        let Some(r) = self.order.refunds.iter().find(|r| r.refund_no == refund_no).cloned() else { return Ok(()) };
        if r.status != RefundStatus::Pending || r.cash_done {
            return Ok(());
        }
        // The insurance part first (6203): the cash part completes the refund, with its movement.
        if !self.refund_insurance_part(refund_no).await? {
            return Ok(());
        }
        match r.cash_destination() {
            Some(Channel::Balance) => {
                self.refund_finished(refund_no, true).await?;
            }
            Some(Channel::Alipay) => {
                let res = self
                    .alipay()?
                    .refund(alipay::RefundRequest {
                        out_trade_no: self.order.out_trade_no(),
                        out_request_no: r.refund_no.clone(),
                        amount: r.cash_amount(),
                        reason: Some(r.reason.clone()),
                    })
                    .await?;
                tracing::info!(order = %self.order.id, fund_change = res.fund_change, "Alipay refund done");
                self.refund_finished(refund_no, true).await?;
            }
            _ => {
                let req = hospital_integrations::wechatpay::RefundRequest {
                    out_trade_no: self.order.out_trade_no(),
                    out_refund_no: r.refund_no.clone(),
                    reason: Some(r.reason.clone()),
                    refund: r.cash_amount(),
                    total: self.order.paid_trade().map(|t| t.amount).unwrap_or(self.order.amount),
                };
                self.provider()?.refund(req).await?;
            }
        }
        Ok(())
    }

    /// A refund's cash part finished (`ok`) or failed: recorded once, with its ledger movement.
    async fn refund_finished(&mut self, refund_no: &str, ok: bool) -> Result<bool, PaymentError> {
        let now = Utc::now();
        let mut o = self.order.clone();
        let changed = o.finish_refund(refund_no, ok, now);
        if !changed {
            return Ok(false);
        }
        let mut change = Change::default();
        let record = o.refunds.iter().find(|r| r.refund_no == refund_no).cloned();
        if ok {
            let amount = record.as_ref().map(|r| r.amount).unwrap_or_default();
            let to_balance = record.as_ref().is_some_and(|r| r.to_balance);
            let body = if to_balance {
                format!("{amount} 已退至账户余额。")
            } else {
                format!("{amount} 已原路退回。")
            };
            change.messages.push(self.message(MessageKind::Refund, "退费成功", body));
            change.movements.extend(o.refund_movement(refund_no, now, self.today()));
        } else if o.kind == OrderKind::TopUp {
            // The provider refused: what was taken out of the balance with the request goes back.
            change.movements.extend(o.refund_reversal_movement(refund_no, now, self.today()));
        }
        self.save(o, change).await?;
        metrics::counter!("payment_refunds_total", "stage" => if ok { "succeeded" } else { "failed" }).increment(1);
        Ok(true)
    }

    pub(super) async fn refund_done(
        &mut self,
        notification_id: String,
        n: RefundNotice,
    ) -> Result<Order, PaymentError> {
        if self.order.notifications_seen.contains(&notification_id) {
            return Ok(self.order.clone());
        }
        if n.out_trade_no != self.order.out_trade_no() {
            return Err(PaymentError::Mismatch("out_trade_no".into()));
        }
        let ok = n.refund_status == hospital_integrations::wechatpay::RefundStatus::Success;
        if self.order.trades.iter().any(|t| t.return_no.as_deref() == Some(n.out_refund_no.as_str())) {
            if ok {
                self.extra_back(&n.out_refund_no).await?;
            }
        } else {
            self.refund_finished(&n.out_refund_no, ok).await?;
        }
        // Remembered, so the notification's repeats stop at the check above.
        let mut o = self.order.clone();
        o.notifications_seen.push(notification_id);
        self.save(o, Change::default()).await?;
        Ok(self.order.clone())
    }

    /// Asks the providers about what we are waiting for: a payment, or pending refunds.
    pub(super) async fn check_provider(&mut self) {
        if self.order.returns_due().next().is_some() {
            if let Err(e) = self.return_extras().await {
                tracing::warn!(order = %self.order.id, error = %e, "giving a second payment back failed; will retry");
                self.myself.send_after(REFUND_RETRY, || PaymentMsg::CheckProvider);
            }
        }
        match self.order.status {
            OrderStatus::Paying if self.order.reversal.is_some() => {
                if let Err(e) = self.continue_reversal().await {
                    tracing::warn!(order = %self.order.id, error = %e, "reversal step failed; will retry");
                    self.myself.send_after(SETTLE_RETRY, || PaymentMsg::CheckProvider);
                }
            }
            OrderStatus::Paying if self.order.awaiting_settlement() => self.confirm_settlement().await,
            OrderStatus::Paying => {
                let open: Vec<Channel> =
                    self.order.trades.iter().filter(|t| t.state == TradeState::Open).map(|t| t.channel).collect();
                for channel in open {
                    match self.query(channel).await {
                        Ok(Seen::Paid { trade_no, amount }) => {
                            let _ = self.cash_arrived(channel, &trade_no, amount, None).await;
                            return;
                        }
                        Ok(Seen::Unpaid) => {}
                        Err(e) => tracing::warn!(order = %self.order.id, error = %e, "order query failed"),
                    }
                }
                if Utc::now() < self.order.expires_at {
                    self.myself.send_after(self.ctx.config.payment_check_after, || PaymentMsg::CheckProvider);
                }
            }
            OrderStatus::Paid => self.confirm_booking().await,
            OrderStatus::Refunding => {
                let pending: Vec<String> = self
                    .order
                    .refunds
                    .iter()
                    .filter(|r| r.status == RefundStatus::Pending)
                    .map(|r| r.refund_no.clone())
                    .collect();
                for refund_no in pending {
                    if let Err(e) = self.ask_refund(&refund_no).await {
                        tracing::warn!(order = %self.order.id, error = %e, "refund retry failed");
                        self.myself.send_after(REFUND_RETRY, || PaymentMsg::CheckProvider);
                    }
                }
            }
            _ => {}
        }
    }
}
