//! Clients for the external systems the hospital platform talks to (Aliyun SMS, Aliyun
//! real-name verification, WeChat mini-program login, WeChat Pay, Alipay, the national medical
//! insurance platform), each behind a provider trait, plus local sandboxes that
//! speak the same wire protocol so development and tests exercise the real client code end to
//! end.

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

pub use alipay::{
    sandbox_router as alipay_sandbox_router, Alipay, AlipayClient, AlipayConfig, AlipayError, AlipaySandbox,
    AlipaySandboxConfig,
};
pub use bill::{BillEntry, BillEntryKind, BillPlant};
pub use insurance::{
    sandbox_router as insurance_sandbox_router, Insurance, InsuranceClient, InsuranceConfig, InsuranceError,
    InsuranceSandbox, InsuranceSandboxConfig,
};
pub use realname::{
    sandbox_router as real_name_sandbox_router, AliyunCloudauth, CloudauthConfig, RealNameError, RealNameSandbox,
    RealNameVerifier, SandboxPerson, Verdict as RealNameVerdict, Verification as RealNameVerification,
};
pub use sms::{
    sandbox_router as sms_sandbox_router, AliyunSms, AliyunSmsConfig, SandboxSms, SmsError, SmsReceipt, SmsSandbox,
    SmsSender,
};
pub use wechat::{
    sandbox_router as wechat_sandbox_router, WechatClient, WechatConfig, WechatError, WechatLogin, WechatSandbox,
    WechatSession,
};
pub use wechat_subscribe::{
    sandbox_router as wechat_subscribe_sandbox_router, SubscribeClient, SubscribeConfig, SubscribeError,
    SubscribeMessage, SubscribeMessenger, SubscribeSandbox,
};
pub use wechatpay::{
    sandbox_router as wechatpay_sandbox_router, JsapiOrder, Notification as WechatPayNotification, PrepayResult,
    Refund as WechatPayRefund, RefundNotice, RefundRequest, RequestPaymentParams, Transaction as WechatPayTransaction,
    WechatPay, WechatPayClient, WechatPayConfig, WechatPayError, WechatPaySandbox, WechatPaySandboxConfig,
};

/// A boxed, `Send` future: lets the provider traits stay object safe (`Arc<dyn SmsSender>`)
/// without pulling in `async-trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
