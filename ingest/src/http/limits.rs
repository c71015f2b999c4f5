//! What a response says about waiting: `retry-after`, and the rate-limit headers of the APIs we
//! call. Read-only helpers over [`Headers`]; the decisions are in [`super::Http`].

use std::time::{Duration, SystemTime};

use super::Headers;

/// How long `retry-after` asks to wait: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), the
/// date taken against `now`. `None` when absent or unreadable.
pub fn retry_after(headers: &Headers, now: SystemTime) -> Option<Duration> {
    let value = headers.get("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT` (RFC 2822 syntax, "GMT" zone).
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A rate limit the response says is used up, and when it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// When requests may resume.
    pub resets_at: SystemTime,
}

/// The rate-limit headers' verdict: `Some` when the remaining allowance is 0.
///
/// Two conventions are read:
/// - GitHub's primary limit, `x-ratelimit-remaining` and `x-ratelimit-reset` "in UTC epoch
///   seconds" (docs.github.com, "Rate limits for the REST API", exceeding the primary rate
///   limit);
/// - PagerDuty's `ratelimit-remaining` and `ratelimit-reset`, the latter "how many seconds to wait
///   before retrying" (support.pagerduty.com, "REST API Rate Limits").
///
/// A reset that cannot be read waits a minute (GitHub's advice when nothing else is known).
pub fn exhausted(headers: &Headers, now: SystemTime) -> Option<Exhausted> {
    let zero = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n == 0)
    };
    if zero("x-ratelimit-remaining") {
        let reset = headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|epoch| SystemTime::UNIX_EPOCH + Duration::from_secs(epoch));
        return Some(Exhausted {
            resets_at: reset.unwrap_or(now + Duration::from_secs(60)),
        });
    }
    if zero("ratelimit-remaining") {
        let wait = headers
            .get("ratelimit-reset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        return Some(Exhausted {
            resets_at: now + wait,
        });
    }
    None
}

/// Whether a 403 is a rate limit rather than a refusal: GitHub answers an exceeded primary or
/// secondary limit with 403 or 429, with `x-ratelimit-remaining: 0`, a `retry-after`, or "an
/// error message that indicates that you exceeded a secondary rate limit" (docs.github.com, "Rate
/// limits for the REST API"). PagerDuty's 403 is a permission error (its 429 is the limit).
pub fn forbidden_is_rate_limit(headers: &Headers, body: &[u8], now: SystemTime) -> bool {
    if headers.get("retry-after").is_some() || exhausted(headers, now).is_some() {
        return true;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    text.contains("rate limit")
}
