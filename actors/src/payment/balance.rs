//! The account balance (PAY-5, PAY-6): top-up orders (paid by WeChat Pay or Alipay through the
//! ordinary pay routes, credited once by the order's `topup:` movement), orders paid from the
//! balance (the debit and the order becoming paid are one store write, refused whole when the
//! balance is short), and second payments of an order given back to where they came from.

use chrono::Utc;
use hospital_domain::ledger::Channel;
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::MessageKind;
use hospital_domain::order::{Order, OrderError, OrderKind, OrderStatus, TradeState};
use hospital_domain::{AccountId, Fen, OrderId};
use hospital_integrations::alipay;
use hospital_store::{DataStore, PaymentWrite, PendingEvent};

use super::msg::PaymentError;
use super::state::{next_check, Change, PaymentState, Seen};
use crate::events::Events;
use crate::system::ActorSystem;

/// The most one top-up brings in: ¥5,000.00.
pub const MAX_TOP_UP: Fen = Fen::new(500_000);

impl ActorSystem {
    /// Makes a top-up order of `amount` for the account, pushed live as `created`; it is paid
    /// like any order (WeChat Pay or Alipay) and expires unpaid like a fee order.
    pub async fn create_top_up(
        &self,
        data: &dyn DataStore,
        events: &Events,
        account: AccountId,
        amount: Fen,
    ) -> Result<Order, PaymentError> {
        if amount == Fen::ZERO || amount > MAX_TOP_UP {
            return Err(PaymentError::FeeItems(format!("a top-up is 0.01 to {MAX_TOP_UP}")));
        }
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.config().fee_order_ttl).unwrap_or(chrono::Duration::minutes(30));
        let mut order =
            Order::new(OrderId::new(), OrderKind::TopUp, account, format!("账户充值 {amount}"), amount, now, now + ttl);
        order.next_check_at = next_check(&order, now);
        let event = vec![PendingEvent::new(account, PersonalEvent::Order((&order).into()))];
        data.apply_payment(PaymentWrite { orders: vec![order.clone()], events: event.clone(), ..Default::default() })
            .await?;
        events.durable(event);
        metrics::counter!("payment_top_up_orders_total").increment(1);
        // The order's actor starts now, so it closes the order itself when it expires.
        let _ = self.order(order.id).await;
        Ok(order)
    }
}

impl PaymentState {
    /// Pays the order in full from the account balance: open trades at the providers are
    /// closed first (one found paid is the payment instead), then the debit, the order paid and
    /// its items paid are one write, refused whole (`InsufficientBalance`) when the balance is
    /// short. A repeat once paid from the balance answers the order.
    pub(super) async fn pay_from_balance(&mut self) -> Result<Order, PaymentError> {
        let o = &self.order;
        if o.channel == Some(Channel::Balance) && !matches!(o.status, OrderStatus::Created | OrderStatus::Paying) {
            return Ok(o.clone());
        }
        if o.kind == OrderKind::TopUp {
            return Err(OrderError::Channel("a top-up is paid by WeChat Pay or Alipay").into());
        }
        if o.insurance.is_some() {
            return Err(OrderError::Channel(
                "the self-pay part of an insurance checkout is paid by WeChat Pay or Alipay",
            )
            .into());
        }
        if !matches!(o.status, OrderStatus::Created | OrderStatus::Paying) {
            return Err(OrderError::InvalidState(o.status).into());
        }
        if Utc::now() >= o.expires_at {
            return Err(PaymentError::Expired);
        }
        // Short now: refused before any trade is closed, so the payer can still pay online.
        // (The write below checks again, atomically.)
        if self.ctx.stores.data.balance(o.account_id).await? < o.amount.get() as i64 {
            return Err(PaymentError::InsufficientBalance);
        }
        let open: Vec<Channel> = o.trades.iter().filter(|t| t.state == TradeState::Open).map(|t| t.channel).collect();
        for channel in open {
            if let Seen::Paid { trade_no, amount } = self.query(channel).await? {
                self.cash_arrived(channel, &trade_no, amount, None).await?;
                return Err(OrderError::InvalidState(self.order.status).into());
            }
            self.close_at(channel).await?;
            let mut o = self.order.clone();
            o.trade_closed(channel);
            self.save(o, Change::default()).await?;
        }
        let now = Utc::now();
        let mut o = self.order.clone();
        o.pay_from_balance(now)?;
        let mut change = Change { items: true, ..Default::default() };
        change.messages.push(self.message(
            MessageKind::PaymentSuccess,
            "支付成功",
            format!("{} {} 已从账户余额支付。", o.description, o.amount),
        ));
        change.movements.extend(o.payment_movement(now, self.today()));
        self.save(o, change).await?;
        metrics::counter!("payment_balance_payments_total").increment(1);
        self.confirm_booking().await;
        Ok(self.order.clone())
    }

    /// Gives back every second payment of the order not yet back: Alipay answers at once;
    /// WeChat Pay completes with its refund notification (`extra_back`).
    pub(super) async fn return_extras(&mut self) -> Result<(), PaymentError> {
        let due: Vec<_> = self.order.returns_due().cloned().collect();
        let reason = "重复支付，自动退回".to_string();
        for t in due {
            let Some(return_no) = t.return_no.clone() else { continue };
            match t.channel {
                Channel::Alipay => {
                    self.alipay()?
                        .refund(alipay::RefundRequest {
                            out_trade_no: t.out_trade_no.clone(),
                            out_request_no: return_no.clone(),
                            amount: t.amount,
                            reason: Some(reason.clone()),
                        })
                        .await?;
                    self.extra_back(&return_no).await?;
                }
                Channel::WechatPay => {
                    let req = hospital_integrations::wechatpay::RefundRequest {
                        out_trade_no: t.out_trade_no.clone(),
                        out_refund_no: return_no.clone(),
                        reason: Some(reason.clone()),
                        refund: t.amount,
                        total: t.amount,
                    };
                    self.provider()?.refund(req).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A second payment is back with the payer: recorded once, with its ledger movement.
    pub(super) async fn extra_back(&mut self, return_no: &str) -> Result<(), PaymentError> {
        let now = Utc::now();
        let mut o = self.order.clone();
        if !o.extra_returned(return_no) {
            return Ok(());
        }
        let amount = o.trades.iter().find(|t| t.return_no.as_deref() == Some(return_no)).map(|t| t.amount);
        let mut change = Change::default();
        change.movements.extend(o.extra_returned_movement(return_no, now, self.today()));
        change.messages.push(self.message(
            MessageKind::Refund,
            "重复支付已退回",
            format!("{} 的重复支付 {} 已原路退回。", o.description, amount.unwrap_or_default()),
        ));
        self.save(o, change).await?;
        metrics::counter!("payment_refunds_total", "stage" => "extra_returned").increment(1);
        Ok(())
    }
}
