//! The fixed reporting period (2025-05-01 to 2026-10-31 inclusive) and UTC time helpers.
//!
//! Times are whole seconds since the Unix epoch; formatting is done here without a time zone
//! database so that output never depends on the machine it runs on.

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;
/// Seconds in a minute.
pub const MINUTE: i64 = 60;

/// First day of the period, 2025-05-01, as days since the epoch.
pub const START_DAY: i64 = days_from_civil(2025, 5, 1);
/// Day after the last day of the period (2026-11-01), as days since the epoch.
pub const END_DAY_EXCLUSIVE: i64 = days_from_civil(2026, 11, 1);
/// Number of days in the period.
pub const PERIOD_DAYS: i64 = END_DAY_EXCLUSIVE - START_DAY;
/// Number of calendar months in the period.
pub const PERIOD_MONTHS: usize = 18;
/// First second of the period.
pub const PERIOD_START: i64 = START_DAY * DAY;
/// First second after the period.
pub const PERIOD_END: i64 = END_DAY_EXCLUSIVE * DAY;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number since the epoch.
pub const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 {
        yoe + era * 400 + 1
    } else {
        yoe + era * 400
    };
    (year, month, day)
}

/// True for Monday to Friday.
pub const fn is_working_day(days: i64) -> bool {
    // 1970-01-01 was a Thursday; 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    weekday < 5
}

/// RFC 3339 UTC timestamp, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_timestamp(seconds: i64) -> String {
    let days = seconds.div_euclid(DAY);
    let secs = seconds.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / HOUR,
        (secs % HOUR) / MINUTE,
        secs % MINUTE
    )
}

/// `YYYY-MM` of a day number.
pub fn month_key(days: i64) -> String {
    let (y, m, _) = civil_from_days(days);
    format!("{y:04}-{m:02}")
}

/// One calendar month of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    /// Position in the period, 0-based.
    pub index: usize,
    /// First day, as days since the epoch.
    pub first_day: i64,
    /// First day of the next month.
    pub next_first_day: i64,
}

impl Month {
    /// `YYYY-MM`.
    pub fn key(&self) -> String {
        month_key(self.first_day)
    }
}

/// The 18 months of the period, in order.
pub fn months() -> Vec<Month> {
    let (mut year, mut month, _) = civil_from_days(START_DAY);
    let mut out = Vec::with_capacity(PERIOD_MONTHS);
    for index in 0..PERIOD_MONTHS {
        let first_day = days_from_civil(year, month, 1);
        if month == 12 {
            year += 1;
            month = 1;
        } else {
            month += 1;
        }
        out.push(Month {
            index,
            first_day,
            next_first_day: days_from_civil(year, month, 1),
        });
    }
    out
}

/// Number of Monday-to-Friday days in the period.
pub fn working_days_in_period() -> i64 {
    (START_DAY..END_DAY_EXCLUSIVE)
        .filter(|d| is_working_day(*d))
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_18_months_of_549_days() {
        assert_eq!(PERIOD_DAYS, 549);
        let months = months();
        assert_eq!(months.len(), 18);
        assert_eq!(months[0].key(), "2025-05");
        assert_eq!(months[17].key(), "2026-10");
        assert_eq!(months[17].next_first_day, END_DAY_EXCLUSIVE);
    }

    #[test]
    fn formats_and_weekdays() {
        assert_eq!(
            format_timestamp(PERIOD_START + 10 * HOUR + 15 * MINUTE),
            "2025-05-01T10:15:00Z"
        );
        // 2025-05-01 was a Thursday, 2025-05-03 a Saturday.
        assert!(is_working_day(START_DAY));
        assert!(!is_working_day(START_DAY + 2));
        assert_eq!(
            civil_from_days(days_from_civil(2026, 2, 28) + 1),
            (2026, 3, 1)
        );
    }
}
