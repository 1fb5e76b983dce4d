//! What a payment actor is sent (`PaymentMsg`), and why a payment operation may fail
//! (`PaymentError`).

use hospital_domain::order::{Order, OrderError};
use hospital_domain::Fen;
use hospital_integrations::wechatpay::{RefundNotice, RequestPaymentParams, Transaction, WechatPayError};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

use crate::error::ActorError;

/// Why a payment operation was refused, or could not be done now.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("the order has expired: book again")]
    Expired,
    #[error("the notification does not match the order: {0}")]
    Mismatch(String),
    #[error("online payment is not configured")]
    NotConfigured,
    /// The payment provider failed or refused the call; nothing was changed, try again.
    #[error(transparent)]
    Provider(#[from] WechatPayError),
    /// The actor or the store could not do it now; nothing was changed, try again.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for PaymentError {
    fn from(e: StoreError) -> Self {
        PaymentError::Unavailable(e.into())
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, PaymentError>>;

#[derive(Debug)]
pub enum PaymentMsg {
    Get {
        reply: RpcReplyPort<Order>,
    },
    /// Creates (or re-creates: the provider returns the same prepay id) the WeChat Pay JSAPI
    /// order and returns what `wx.requestPayment` needs.
    Prepay {
        openid: String,
        reply: Reply<RequestPaymentParams>,
    },
    /// A verified `TRANSACTION.SUCCESS` (or a query that found the order paid).
    Paid {
        notification_id: Option<String>,
        transaction: Transaction,
        reply: Option<Reply<Order>>,
    },
    /// A verified `REFUND.*` notification.
    RefundDone {
        notification_id: String,
        notice: RefundNotice,
        reply: Reply<Order>,
    },
    /// The booking is gone before payment: close the order (at the provider too).
    Close {
        reply: Option<Reply<Order>>,
    },
    /// Refunds `amount` (all that is left when None): cancellations, clinic stops, staff.
    Refund {
        amount: Option<Fen>,
        reason: String,
        reply: Option<Reply<Order>>,
    },
    /// Chases a notification that has not come: asks the provider; internal.
    #[doc(hidden)]
    CheckProvider,
    #[doc(hidden)]
    Tick,
}
