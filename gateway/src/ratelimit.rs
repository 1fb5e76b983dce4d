//! Rate limits (PLAT-5) with governor: per client IP on every request (`guard::edge`
//! middleware), per phone on code sends and logins. Over the limit: 429 with `Retry-After`.
//! These are per node; the cluster-wide rules that must hold across nodes (one SMS per phone per
//! 60 s, the daily cap, wrong-code caps) are counters in Redis, see `auth::codes`.

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::LimitsConfig;
use crate::error::ApiError;

pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_phone: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

impl RateLimits {
    pub fn new(cfg: &LimitsConfig) -> Self {
        let per_ip = Quota::per_second(nz(cfg.per_ip_per_second)).allow_burst(nz(cfg.per_ip_burst));
        let per_phone = Quota::per_minute(nz(cfg.per_phone_per_minute)).allow_burst(nz(cfg.per_phone_burst));
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(per_ip),
            per_phone: DefaultKeyedRateLimiter::keyed(per_phone),
            clock: DefaultClock::default(),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.per_ip.check_key(&ip).map_err(|not_until| ApiError::RateLimited {
            code: "rate_limited",
            message: "too many requests from this address; slow down".into(),
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    pub fn check_phone(&self, phone: &str) -> Result<(), ApiError> {
        self.per_phone.check_key(&phone.to_string()).map_err(|not_until| ApiError::RateLimited {
            code: "rate_limited",
            message: "too many attempts for this phone number; wait and try again".into(),
            retry_after: not_until.wait_time_from(self.clock.now()).max(Duration::from_secs(1)),
        })
    }

    /// Drops idle keys so the maps do not grow with every address ever seen.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_phone.retain_recent();
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop behind a trusted proxy.
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    client_ip_of(req.headers(), req.extensions(), trust_forwarded_for)
}

/// `client_ip` from a request's parts (for extractors).
pub fn client_ip_of(headers: &HeaderMap, extensions: &Extensions, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}
