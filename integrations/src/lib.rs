//! Clients for the external systems the hospital platform talks to (Aliyun SMS, Aliyun
//! real-name verification, WeChat mini-program login, subscribe messages, WeChat Pay, Alipay, the
//! national medical insurance platform), each behind a provider trait, plus local sandboxes that
//! speak the same wire protocol so development and tests exercise the real client code end to
//! end.
//!
//! The sandboxes (each area's `sandbox` module, `aliyun::gate`, `wechatpay::test_keys`) are
//! behind the feature `sandbox`: the demo binary turns it on (its default features), a
//! production build (`--no-default-features`) has none of them.

use std::future::Future;
use std::pin::Pin;

pub mod alipay;
pub mod aliyun;
pub mod bill;
pub mod insurance;
pub mod realname;
pub mod sms;
pub mod wechat;
pub mod wechat_subscribe;
pub mod wechatpay;
pub mod yuan;

#[cfg(feature = "sandbox")]
pub use alipay::{sandbox_router as alipay_sandbox_router, AlipaySandbox, AlipaySandboxConfig};
pub use alipay::{Alipay, AlipayClient, AlipayConfig, AlipayError};
pub use bill::{BillEntry, BillEntryKind, BillPlant};
#[cfg(feature = "sandbox")]
pub use insurance::{sandbox_router as insurance_sandbox_router, InsuranceSandbox, InsuranceSandboxConfig};
pub use insurance::{Insurance, InsuranceClient, InsuranceConfig, InsuranceError};
pub use realname::{
    AliyunCloudauth, CloudauthConfig, RealNameError, RealNameVerifier, Verdict as RealNameVerdict,
    Verification as RealNameVerification,
};
pub use sms::{AliyunSms, AliyunSmsConfig, SmsError, SmsReceipt, SmsSender};
pub use wechat::{WechatClient, WechatConfig, WechatError, WechatLogin, WechatSession};
pub use wechat_subscribe::{SubscribeClient, SubscribeConfig, SubscribeError, SubscribeMessage, SubscribeMessenger};
pub use wechatpay::{
    JsapiOrder, Notification as WechatPayNotification, PrepayResult, Refund as WechatPayRefund, RefundNotice,
    RefundRequest, RequestPaymentParams, Transaction as WechatPayTransaction, WechatPay, WechatPayClient,
    WechatPayConfig, WechatPayError,
};

#[cfg(feature = "sandbox")]
pub use realname::{sandbox_router as real_name_sandbox_router, RealNameSandbox, SandboxPerson};
#[cfg(feature = "sandbox")]
pub use sms::{sandbox_router as sms_sandbox_router, SandboxSms, SmsSandbox};
#[cfg(feature = "sandbox")]
pub use wechat::{sandbox_router as wechat_sandbox_router, WechatSandbox};
#[cfg(feature = "sandbox")]
pub use wechat_subscribe::{sandbox_router as wechat_subscribe_sandbox_router, SubscribeSandbox};
#[cfg(feature = "sandbox")]
pub use wechatpay::{sandbox_router as wechatpay_sandbox_router, WechatPaySandbox, WechatPaySandboxConfig};

/// A boxed, `Send` future: lets the provider traits stay object safe (`Arc<dyn SmsSender>`)
/// without pulling in `async-trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
