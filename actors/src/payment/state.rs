//! One order in memory (`PaymentState`) and what the provider's answers do to it.

use chrono::Utc;
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::{Order, OrderStatus};
use hospital_domain::{Fen, OrderId};
use hospital_integrations::wechatpay::{
    JsapiOrder, RefundNotice, RefundRequest, RefundStatus, RequestPaymentParams, Transaction, WechatPay,
};
use hospital_store::{BookingWrite, PendingEvent};
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;

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
}

impl PaymentState {
    pub(super) fn provider(&self) -> Result<Arc<dyn WechatPay>, PaymentError> {
        self.ctx.wechat_pay.clone().ok_or(PaymentError::NotConfigured)
    }

    /// Writes the order (and messages); memory changes only after the write succeeded.
    async fn save(&mut self, order: Order, messages: Vec<Message>) -> Result<(), PaymentError> {
        // Payment status is pushed live (PAY-4): the events are written with the change and
        // announced once it is durable.
        let events: Vec<PendingEvent> =
            std::iter::once(PendingEvent::new(order.account_id, PersonalEvent::Order((&order).into())))
                .chain(messages.iter().map(PendingEvent::message))
                .collect();
        let w = BookingWrite { orders: vec![order.clone()], messages, events: events.clone(), ..Default::default() };
        self.ctx.stores.data.apply_booking(w).await?;
        self.ctx.events.durable(events);
        self.order = order;
        Ok(())
    }

    pub(super) fn message(&self, kind: MessageKind, title: &str, body: String) -> Message {
        Message::new(self.order.account_id, kind, title, body, Some(self.order.id.to_string()), Utc::now())
    }

    pub(super) async fn prepay(&mut self, openid: String) -> Result<RequestPaymentParams, PaymentError> {
        let provider = self.provider()?;
        if Utc::now() >= self.order.expires_at {
            return Err(PaymentError::Expired);
        }
        let mut o = self.order.clone();
        o.start_paying()?;
        if o != self.order {
            self.save(o, vec![]).await?;
        }
        let req = JsapiOrder {
            out_trade_no: self.order.out_trade_no(),
            description: self.order.description.clone(),
            amount: self.order.amount,
            payer_openid: openid,
            time_expire: self.order.expires_at,
        };
        let r = provider.jsapi_order(req).await?;
        // If no notification comes, ask the provider ourselves.
        self.myself.send_after(self.ctx.config.payment_check_after, || PaymentMsg::CheckProvider);
        Ok(r.pay_params)
    }

    pub(super) async fn paid(
        &mut self,
        notification_id: Option<String>,
        t: Transaction,
    ) -> Result<Order, PaymentError> {
        if let Some(id) = &notification_id {
            if self.order.notifications_seen.contains(id) {
                metrics::counter!("payment_notifications_total", "outcome" => "duplicate").increment(1);
                return Ok(self.order.clone());
            }
        }
        if t.out_trade_no != self.order.out_trade_no() {
            return Err(PaymentError::Mismatch("out_trade_no".into()));
        }
        if !t.is_paid() {
            return Err(PaymentError::Mismatch(format!("trade state {:?}", t.trade_state)));
        }
        let mut o = self.order.clone();
        let first = o.mark_paid(t.amount.total, t.transaction_id.as_deref().unwrap_or(""), Utc::now())?;
        if let Some(id) = notification_id {
            o.notifications_seen.push(id);
        }
        let msgs = if first {
            vec![self.message(MessageKind::PaymentSuccess, "支付成功", format!("挂号费 {} 已支付。", o.amount))]
        } else {
            vec![]
        };
        self.save(o, msgs).await?;
        metrics::counter!("payment_notifications_total", "outcome" => if first { "paid" } else { "duplicate" })
            .increment(1);
        if first {
            self.confirm_booking().await;
        }
        Ok(self.order.clone())
    }

    /// Money arrived: confirm the booking, or refund if the place is gone.
    async fn confirm_booking(&mut self) {
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
                let _ = self.refund(None, "号源已释放，自动退费".into()).await;
            }
        }
    }

    pub(super) async fn close(&mut self) -> Result<Order, PaymentError> {
        match self.order.status {
            OrderStatus::Created => {}
            OrderStatus::Paying => {
                let provider = self.provider()?;
                let t = provider.query_order(&self.order.out_trade_no()).await?;
                if t.is_paid() {
                    // Paid at the last moment: it is a payment, not a closure.
                    return self.paid(None, t).await;
                }
                provider.close_order(&self.order.out_trade_no()).await?;
            }
            _ => return Ok(self.order.clone()),
        }
        let mut o = self.order.clone();
        o.close()?;
        self.save(o, vec![]).await?;
        metrics::counter!("payment_orders_closed_total").increment(1);
        Ok(self.order.clone())
    }

    pub(super) async fn refund(&mut self, amount: Option<Fen>, reason: String) -> Result<Order, PaymentError> {
        if matches!(self.order.status, OrderStatus::Created | OrderStatus::Paying) {
            // Nothing was paid: closing is the refund. (Boxed: closing may find the order paid,
            // which confirms or refunds, which may close: a cycle the compiler needs sized.)
            return Box::pin(self.close()).await;
        }
        let provider = self.provider()?;
        let left = self.order.amount.checked_sub(self.order.refunded_total()).unwrap_or(Fen::ZERO);
        let amount = amount.unwrap_or(left);
        let refund_no = format!("R{}{:02}", &self.order.out_trade_no()[..28], self.order.refunds.len() + 1);
        let mut o = self.order.clone();
        o.start_refund(refund_no.clone(), amount, &reason, Utc::now())?;
        // Durable first: after a crash the refund is retried with the same number, which the
        // provider treats as the same refund.
        self.save(o, vec![]).await?;
        metrics::counter!("payment_refunds_total", "stage" => "requested").increment(1);
        let req = RefundRequest {
            out_trade_no: self.order.out_trade_no(),
            out_refund_no: refund_no,
            reason: Some(reason),
            refund: amount,
            total: self.order.amount,
        };
        if let Err(e) = provider.refund(req).await {
            tracing::warn!(order = %self.order.id, error = %e, "refund request failed; will retry");
            self.myself.send_after(Duration::from_secs(5), || PaymentMsg::CheckProvider);
        }
        Ok(self.order.clone())
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
        let mut o = self.order.clone();
        let ok = n.refund_status == RefundStatus::Success;
        let changed = o.finish_refund(&n.out_refund_no, ok, Utc::now());
        o.notifications_seen.push(notification_id);
        let msgs = if changed && ok {
            vec![self.message(MessageKind::Refund, "退费成功", format!("{} 已原路退回。", n.amount.refund))]
        } else {
            vec![]
        };
        self.save(o, msgs).await?;
        metrics::counter!("payment_refunds_total", "stage" => if ok { "succeeded" } else { "failed" }).increment(1);
        Ok(self.order.clone())
    }

    /// Asks the provider about what we are waiting for: a payment, or pending refunds.
    pub(super) async fn check_provider(&mut self) {
        let Ok(provider) = self.provider() else { return };
        match self.order.status {
            OrderStatus::Paying => match provider.query_order(&self.order.out_trade_no()).await {
                Ok(t) if t.is_paid() => {
                    let _ = self.paid(None, t).await;
                }
                Ok(_) if Utc::now() < self.order.expires_at => {
                    self.myself.send_after(self.ctx.config.payment_check_after, || PaymentMsg::CheckProvider);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(order = %self.order.id, error = %e, "order query failed"),
            },
            OrderStatus::Paid => self.confirm_booking().await,
            OrderStatus::Refunding => {
                let pending: Vec<_> = self
                    .order
                    .refunds
                    .iter()
                    .filter(|r| r.status == hospital_domain::order::RefundStatus::Pending)
                    .cloned()
                    .collect();
                for r in pending {
                    let req = RefundRequest {
                        out_trade_no: self.order.out_trade_no(),
                        out_refund_no: r.refund_no.clone(),
                        reason: Some(r.reason.clone()),
                        refund: r.amount,
                        total: self.order.amount,
                    };
                    // The same refund number again: the provider answers with the same refund.
                    if let Err(e) = provider.refund(req).await {
                        tracing::warn!(order = %self.order.id, error = %e, "refund retry failed");
                        self.myself.send_after(Duration::from_secs(30), || PaymentMsg::CheckProvider);
                    }
                }
            }
            _ => {}
        }
    }
}
