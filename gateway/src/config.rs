//! The gateway crate's one configuration type, `GatewayConfig`, with its sections (auth, limits,
//! real-name checks, WebSockets) and every default in one place: what a hospital would run with;
//! tests shorten the timers.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    /// Most 就诊人 one account may hold.
    pub patient_cap: usize,
    /// Most accounts that may hold one person (one ID number) as a 就诊人.
    pub person_account_cap: usize,
    /// Checking a 就诊人's name against their ID number with the real-name provider.
    pub real_name: RealNameConfig,
    /// Mount `/sandbox/...` (SMS outbox, WeChat login codes). Never in production.
    pub sandbox: bool,
    /// Use the left-most `X-Forwarded-For` address as the client IP (behind a trusted proxy only).
    pub trust_forwarded_for: bool,
    /// The hospital's time zone (IANA name).
    pub timezone: String,
    /// The WebSocket gateway's limits and timers (`[gateway.realtime]`).
    pub realtime: RealtimeConfig,
    /// The HMAC-SHA256 key the lab system signs its exam-status webhooks with
    /// (`HOSPITAL_GATEWAY__LAB_WEBHOOK_SECRET`). Without one the webhook answers 503, except in
    /// sandbox mode, which uses `http::exams::SANDBOX_LAB_WEBHOOK_SECRET`.
    #[serde(skip_serializing)]
    pub lab_webhook_secret: Option<secrecy::SecretString>,
    /// The HMAC-SHA256 key the HIS signs its fee-item calls with
    /// (`HOSPITAL_GATEWAY__HIS_WEBHOOK_SECRET`). Without one the route answers 503, except in
    /// sandbox mode, which uses `http::fees::SANDBOX_HIS_WEBHOOK_SECRET`.
    #[serde(skip_serializing)]
    pub his_webhook_secret: Option<secrecy::SecretString>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            patient_cap: 5,
            person_account_cap: 3,
            real_name: RealNameConfig::default(),
            sandbox: false,
            trust_forwarded_for: false,
            timezone: "Asia/Shanghai".into(),
            realtime: Default::default(),
            lab_webhook_secret: None,
            his_webhook_secret: None,
        }
    }
}

/// Real-name verification (身份二要素核验) of the 就诊人 an account adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealNameConfig {
    /// A name the provider confirmed for an ID number is trusted this many days without asking
    /// again (the provider bills every check).
    pub cache_days: u64,
    /// Checks an account may fail per local day (wrong name, no record) before it must wait
    /// for tomorrow: the provider must not become an oracle for guessing a person's name.
    pub daily_failures: i64,
}

impl Default for RealNameConfig {
    fn default() -> Self {
        Self { cache_days: 180, daily_failures: 10 }
    }
}

impl RealNameConfig {
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_days * 24 * 3600)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A session ends this long after its last use (AUTH-5 automatic logout).
    pub idle_timeout_secs: u64,
    /// A session ends this long after login, however active.
    pub absolute_lifetime_secs: u64,
    /// An SMS code is valid this long (AUTH-1: 5 minutes).
    pub sms_code_ttl_secs: u64,
    /// One send per phone per this many seconds (AUTH-1: 60 s).
    pub sms_cooldown_secs: u64,
    /// Sends per phone per local day.
    pub sms_daily_cap: i64,
    /// Wrong codes before the code is void.
    pub sms_max_wrong: i64,
    /// Wrong passwords per login name before a lockout of `password_lock_secs`.
    pub password_max_wrong: i64,
    pub password_lock_secs: u64,
    /// How long this node believes a patient session it read, without reading it again (the
    /// session check costs no store read meanwhile; a logout on any node ends it everywhere at
    /// once, and a node cut off from the fan-out believes no cached session, see `auth::cache`).
    /// 0 turns the cache off.
    pub session_cache_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 7 * 24 * 3600,
            sms_code_ttl_secs: 300,
            sms_cooldown_secs: 60,
            sms_daily_cap: 10,
            sms_max_wrong: 5,
            password_max_wrong: 10,
            password_lock_secs: 15 * 60,
            session_cache_ms: 60_000,
        }
    }
}

impl AuthConfig {
    pub fn session_cache(&self) -> Duration {
        Duration::from_millis(self.session_cache_ms)
    }
    /// How often a session's activity is written: a tenth of the idle timeout, at most a minute.
    pub fn touch_every(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(((self.idle_timeout_secs * 1000) / 10).min(60_000) as i64)
    }
    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.sms_code_ttl_secs)
    }
}

/// governor quotas (PLAT-5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second per client IP, and the burst allowed above it.
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Code sends and login attempts per phone per minute, and the burst.
    pub per_phone_per_minute: u32,
    pub per_phone_burst: u32,
    /// Largest JSON (or untyped) request body accepted, in bytes (a larger `Content-Length` is
    /// refused at once).
    pub body_limit_bytes: usize,
    /// Largest upload (a body of any other content type: an image, a report file) the guard lets
    /// through; each upload route caps it further by its own policy (`objects.max_*_bytes`).
    pub upload_limit_bytes: u64,
    /// A request's head (request line and headers) must arrive within this many seconds of the
    /// server starting to wait for it; an idle keep-alive connection is closed after it too.
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this many seconds of the server starting to read it
    /// (408 `request_timeout` otherwise).
    pub body_read_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes (431 `headers_too_large`).
    pub max_header_bytes: usize,
    /// Longest request URI (path and query), in bytes (414 `uri_too_long`).
    pub max_uri_bytes: usize,
    /// Connections one client address may hold open at once, upgraded WebSockets included;
    /// more are refused (429 `too_many_connections`, then closed). 0 = no cap. Behind a reverse
    /// proxy every connection comes from the proxy: raise it or let the proxy enforce it.
    pub max_connections_per_ip: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_ip_per_second: 200,
            per_ip_burst: 400,
            per_phone_per_minute: 10,
            per_phone_burst: 5,
            body_limit_bytes: 64 * 1024,
            upload_limit_bytes: 256 << 20,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 20,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            max_connections_per_ip: 512,
        }
    }
}

/// The WebSocket limits and timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Personal events waiting to be sent per socket; a client further behind is too slow.
    pub outbox: usize,
    pub max_frame_bytes: usize,
    pub frames_per_second: u32,
    pub burst: u32,
    /// Bad or over-limit frames tolerated before the socket is closed (4029).
    pub max_bad_frames: u32,
    pub max_topics: usize,
    /// The server pings this often; clients should send `ping` this often.
    pub heartbeat_secs: u64,
    /// Closed (4002) when nothing came from the client for this long.
    pub idle_timeout_secs: u64,
    /// Time allowed for the `auth` frame when the upgrade carried no token.
    pub auth_timeout_secs: u64,
    /// A send that does not complete in this time ends the connection.
    pub write_timeout_secs: u64,
    /// Personal events sent and not yet acknowledged (`ack`) before the client counts as too
    /// slow; below what the log keeps (500), so a client closed for it can always resume.
    pub max_unacked: u64,
    /// The longest an event may wait for its acknowledgement.
    pub ack_timeout_secs: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            outbox: 256,
            max_frame_bytes: 16 * 1024,
            frames_per_second: 20,
            burst: 40,
            max_bad_frames: 20,
            max_topics: 50,
            heartbeat_secs: 25,
            idle_timeout_secs: 75,
            auth_timeout_secs: 10,
            write_timeout_secs: 10,
            max_unacked: 300,
            ack_timeout_secs: 60,
        }
    }
}
