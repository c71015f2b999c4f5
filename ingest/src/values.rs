//! Parsers for the scalar values every source reads: timestamps and exact decimals (the latter
//! live in `model::money`, shared with config).
//! They work on bytes and never allocate, since the bill readers call them millions of times.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

pub use model::money::{DecimalError, parse_decimal};

/// Parses a timestamp into microseconds since the epoch, UTC.
///
/// Accepts RFC 3339 (`2024-09-01T00:00:00Z`, `…+02:00`, fractional seconds) and the FOCUS sample's
/// `2024-09-01 00:00:00` (read as UTC), and a bare date `2024-09-01` (midnight UTC).
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    let b = text.as_bytes();
    // Fast path: `YYYY-MM-DD[T ]HH:MM:SS` optionally followed by `Z`.
    if (b.len() == 19 || (b.len() == 20 && (b[19] == b'Z' || b[19] == b'z')))
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
    {
        let year = digits(&b[0..4])? as i32;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let dt = date.and_hms_opt(hour, minute, second)?;
        return Some(dt.and_utc().timestamp_micros());
    }
    if b.len() == 10 {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    None
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_accepted_shape() {
        let midnight = 1_725_148_800_000_000; // 2024-09-01T00:00:00Z
        assert_eq!(
            parse_timestamp_micros("2024-09-01 00:00:00"),
            Some(midnight)
        );
        assert_eq!(
            parse_timestamp_micros("2024-09-01T00:00:00Z"),
            Some(midnight)
        );
        assert_eq!(parse_timestamp_micros("2024-09-01"), Some(midnight));
        assert_eq!(
            parse_timestamp_micros("2024-09-01T02:00:00+02:00"),
            Some(midnight)
        );
        assert_eq!(
            parse_timestamp_micros("2024-09-01T00:00:00.5Z"),
            Some(midnight + 500_000)
        );
        assert_eq!(parse_timestamp_micros("2024-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp_micros("yesterday"), None);
    }
}
