//! The payment side of `ActorSystem`, and the effect dispatcher: it takes the `Effect`s booking
//! actors emit once their change is durable (close an unpaid order, refund a paid one) and hands
//! each to the order's payment actor. A schedule actor never waits on a payment provider.

use hospital_domain::order::Order;
use hospital_domain::{Fen, OrderId};
use hospital_integrations::alipay;
use hospital_integrations::wechatpay::{RefundNotice, RequestPaymentParams, Transaction};
use tokio::sync::mpsc::UnboundedReceiver;

use super::actor::PaymentKind;
use super::msg::{AlipayPayment, PaymentError, PaymentMsg};
use crate::effects::Effect;
use crate::error::ActorError;
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    asks! { PaymentKind:
        /// The order as its payment actor holds it.
        pub fn order(order: OrderId) -> Order = reads |reply| PaymentMsg::Get { reply };
        /// The `wx.requestPayment` parameters for an order.
        pub fn prepay(order: OrderId, openid: String) -> RequestPaymentParams, PaymentError
            = once |reply| PaymentMsg::Prepay { openid: openid.clone(), reply };
        /// A verified payment notification (or query result) for an order.
        pub fn payment_notified(order: OrderId, notification_id: String, transaction: Transaction) -> Order, PaymentError
            = once |reply| PaymentMsg::Paid {
                notification_id: Some(notification_id.clone()),
                transaction: transaction.clone(),
                reply: Some(reply),
            };
        /// The Alipay trade (mini-program) or cashier URL (H5) for an order.
        pub fn alipay_pay(order: OrderId, buyer_open_id: Option<String>, return_url: Option<String>) -> AlipayPayment, PaymentError
            = once |reply| PaymentMsg::AlipayPay { buyer_open_id: buyer_open_id.clone(), return_url: return_url.clone(), reply };
        /// A verified Alipay notification for an order.
        pub fn alipay_notified(order: OrderId, notification: alipay::Notification) -> Order, PaymentError
            = once |reply| PaymentMsg::AlipayNotified { notification: notification.clone(), reply };
        /// A verified refund notification for an order.
        pub fn refund_notified(order: OrderId, notification_id: String, notice: RefundNotice) -> Order, PaymentError
            = once |reply| PaymentMsg::RefundDone { notification_id: notification_id.clone(), notice: notice.clone(), reply };
        /// Pre-settles a fee order through insurance (6201 + 6202) under the 就诊人's binding.
        pub fn insurance_pre_settle(order: OrderId, binding: hospital_domain::insured::InsuranceBinding, use_account: bool) -> Order, PaymentError
            = once |reply| PaymentMsg::InsurancePreSettle { binding: binding.clone(), use_account, reply };
        /// Refunds part or all of a paid order (staff-initiated, PAY-6): the cash part to the
        /// account balance when `to_balance`, else back through its channel.
        pub fn refund(order: OrderId, amount: Option<Fen>, reason: String, to_balance: bool) -> Order, PaymentError
            = once |reply| PaymentMsg::Refund { amount, reason: reason.clone(), to_balance, reply: Some(reply) };
        /// Pays an unpaid order in full from the account balance (PAY-5).
        pub fn pay_from_balance(order: OrderId) -> Order, PaymentError
            = once |reply| PaymentMsg::PayFromBalance { reply };
    }

    /// Carries out one effect through the order's payment actor.
    async fn run_effect(&self, effect: Effect) -> Result<(), ActorError> {
        match effect {
            Effect::CloseOrder(order) => self.tell::<PaymentKind>(order, PaymentMsg::Close { reply: None }).await,
            Effect::Refund { order, reason } => {
                let msg = PaymentMsg::Refund { amount: None, reason, to_balance: false, reply: None };
                self.tell::<PaymentKind>(order, msg).await
            }
        }
    }
}

/// The effect dispatcher (started by `ActorSystem::start`): one task per effect, so a slow
/// provider call does not hold up the others.
pub(crate) async fn dispatch(system: ActorSystem, mut rx: UnboundedReceiver<Effect>) {
    while let Some(effect) = rx.recv().await {
        let system = system.clone();
        tokio::spawn(async move {
            if let Err(e) = system.run_effect(effect.clone()).await {
                tracing::warn!(?effect, error = %e, "effect failed; the payment actor's timers will retry");
            }
        });
    }
}
