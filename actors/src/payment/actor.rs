//! The payment actor's handler, and payments as an actor kind.

use hospital_domain::order::OrderStatus;
use hospital_domain::OrderId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::Duration;

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::payment_resource;

pub struct PaymentActor;

impl Actor for PaymentActor {
    type Msg = PaymentMsg;
    type State = PaymentState;
    type Arguments = PaymentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PaymentArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let data = &args.ctx.stores.data;
        let mut order = data.order(args.order).await?.ok_or_else(|| format!("no order {}", args.order))?;
        // Several nodes: take the order's lease and claim it (only once the order is known to
        // exist: a claim of nothing would leave a row with a fence and no order), then load it
        // again, so nothing a previous owner could still write is missing from memory.
        let held = Held::take(args.ctx.ownership.as_ref(), &payment_resource(args.order), data.as_ref()).await?;
        if held.fence().is_some() {
            order = data.order(args.order).await?.ok_or_else(|| format!("no order {}", args.order))?;
        }
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(PaymentState { myself, order, idle, ctx: args.ctx, held })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || PaymentMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || PaymentMsg::RenewLease);
        // After a restart: pick up whatever was in flight (a payment being made, refunds asked).
        if matches!(state.order.status, OrderStatus::Paying | OrderStatus::Refunding)
            || state.order.returns_due().next().is_some()
        {
            myself.send_after(Duration::from_secs(1), || PaymentMsg::CheckProvider);
        }
        // An unpaid order looks at itself when it expires (the sweeper does too, after restarts).
        if let Some(due) = next_check(&state.order, chrono::Utc::now()) {
            let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
            myself.send_after(wait, || PaymentMsg::Due);
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        state.held.release(state.ctx.ownership.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, PaymentMsg::Tick | PaymentMsg::RenewLease) {
            state.idle.touch();
        }
        match msg {
            PaymentMsg::Get { reply } => {
                let _ = reply.send(state.order.clone());
            }
            PaymentMsg::Prepay { openid, reply } => {
                let _ = reply.send(state.prepay(openid).await);
            }
            PaymentMsg::Paid { notification_id, transaction, reply } => {
                let r = state.paid(notification_id, transaction).await;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            PaymentMsg::AlipayPay { buyer_open_id, return_url, reply } => {
                let _ = reply.send(state.alipay_pay(buyer_open_id, return_url).await);
            }
            PaymentMsg::AlipayNotified { notification, reply } => {
                let _ = reply.send(state.alipay_notified(notification).await);
            }
            PaymentMsg::InsurancePreSettle { binding, use_account, reply } => {
                let _ = reply.send(state.pre_settle(binding, use_account).await);
            }
            PaymentMsg::Due => state.due().await,
            PaymentMsg::RefundDone { notification_id, notice, reply } => {
                let _ = reply.send(state.refund_done(notification_id, notice).await);
            }
            PaymentMsg::Close { reply } => {
                let r = state.close().await;
                if let Err(e) = &r {
                    tracing::warn!(order = %state.order.id, error = %e, "closing the order failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            PaymentMsg::Refund { amount, reason, to_balance, reply } => {
                let r = state.refund(amount, reason, to_balance).await;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            PaymentMsg::PayFromBalance { reply } => {
                let _ = reply.send(state.pay_from_balance().await);
            }
            PaymentMsg::CheckProvider => state.check_provider().await,
            PaymentMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "payment", &state.order.id).await;
            }
            PaymentMsg::Tick => {
                // Orders waiting on the provider keep their actor (and its timers).
                let waiting = matches!(state.order.status, OrderStatus::Paying | OrderStatus::Refunding)
                    || state.order.returns_due().next().is_some();
                state.idle.drain_if_idle(&myself, waiting, &state.order.id);
            }
        }
        Ok(())
    }
}

/// Payments as an actor kind: keyed by `OrderId`, supervised by `payments`.
pub struct PaymentKind;

actor_kind!(PaymentKind, "payment", "payments", OrderId, PaymentActor, PaymentArgs { order });
