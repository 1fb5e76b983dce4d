//! What a payment actor is sent (`PaymentMsg`), and why a payment operation may fail
//! (`PaymentError`).

use hospital_domain::order::{Order, OrderError};
use hospital_domain::Fen;
use hospital_integrations::alipay::{self, AlipayError};
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
    /// Alipay failed or refused the call; nothing was changed, try again.
    #[error(transparent)]
    Alipay(#[from] AlipayError),
    /// The insurance platform failed or refused the call.
    #[error(transparent)]
    Insurance(#[from] hospital_integrations::insurance::InsuranceError),
    /// The order cannot be settled through insurance (no binding, an expired authorisation, an
    /// item outside the catalogue).
    #[error("{0}")]
    NotInsured(String),
    /// A checkout named items that are not the 就诊人's, not unpaid, or none at all.
    #[error("{0}")]
    FeeItems(String),
    /// The balance holds less than the order: nothing was taken (PAY-5).
    #[error("the balance is insufficient")]
    InsufficientBalance,
    /// The actor or the store could not do it now; nothing was changed, try again.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for PaymentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(hospital_store::Conflict::InsufficientBalance) => PaymentError::InsufficientBalance,
            e => PaymentError::Unavailable(e.into()),
        }
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
    /// Creates (or re-creates) the Alipay trade: `alipay.trade.create` for the mini-program
    /// (a buyer given), else the signed `alipay.trade.wap.pay` URL for a mobile browser.
    AlipayPay {
        buyer_open_id: Option<String>,
        return_url: Option<String>,
        reply: Reply<AlipayPayment>,
    },
    /// A verified Alipay notification for this order.
    AlipayNotified {
        notification: alipay::Notification,
        reply: Reply<Order>,
    },
    /// 6201 + 6202 under this binding: the split of the order, recorded on it.
    InsurancePreSettle {
        binding: hospital_domain::insured::InsuranceBinding,
        use_account: bool,
        reply: Reply<Order>,
    },
    /// The open-order sweeper (or the actor's own timer): the order is due a look (expired
    /// unpaid, a payment or refund to chase).
    Due,
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
    /// Refunds `amount` (all that is left when None): cancellations, clinic stops, staff. The
    /// cash part goes to the account balance when `to_balance`, else back through its channel.
    Refund {
        amount: Option<Fen>,
        reason: String,
        to_balance: bool,
        reply: Option<Reply<Order>>,
    },
    /// Pays the order in full from the account balance (PAY-5), atomically with the debit.
    PayFromBalance {
        reply: Reply<Order>,
    },
    /// Chases a notification that has not come: asks the provider; internal.
    #[doc(hidden)]
    CheckProvider,
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the order's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}

/// How the payer pays an order by Alipay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayPayment {
    pub out_trade_no: String,
    /// The mini-program flow: what `my.tradePay({ tradeNO })` takes.
    pub trade_no: Option<String>,
    /// The H5 flow: where to send the payer's browser.
    pub pay_url: Option<String>,
}
