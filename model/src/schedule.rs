//! Cron schedules in the reporting time zone (`[alerts] schedule`, `[[reports]] schedule`),
//! through `croner`: 5 fields (minute first), or 6 with seconds first; `L`, `#` and `W`
//! (`0 9 1W * *`: 09:00 on the first working day of the month). Local times a DST change skips
//! run at the first instant after the gap; times it repeats run once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    text: String,
}

impl Schedule {
    /// Parses `text`; the error says what croner found wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a cron expression ({e})"))?;
        Ok(Schedule {
            cron,
            text: text.to_owned(),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `after` that the schedule names, read in `zone`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The run due at `now` when the last run was the one scheduled at `last`: the latest time the
    /// schedule names after `last` and at or before `now` (runs missed while nothing ran are made
    /// once, as that latest one), or `None` when nothing is due yet.
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let first = self.next_after(last, zone)?;
        if first > now {
            return None;
        }
        let latest = self
            .cron
            .find_previous_occurrence(&now.with_timezone(&zone), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))?;
        Some(latest.max(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_run_keeps_its_local_hour_across_the_dst_changes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let daily = Schedule::parse("0 8 * * *").unwrap();
        // Spring forward (2026-03-29): 08:00 is 07:00 UTC before, 06:00 UTC after.
        assert_eq!(
            daily.next_after(utc("2026-03-28T07:00:00Z"), berlin),
            Some(utc("2026-03-29T06:00:00Z"))
        );
        // Fall back (2026-10-25): 08:00 is 07:00 UTC again.
        assert_eq!(
            daily.next_after(utc("2026-10-24T06:00:00Z"), berlin),
            Some(utc("2026-10-25T07:00:00Z"))
        );
        // 02:30 does not exist on 2026-03-29 in Berlin: it runs at the first instant after the
        // gap, 03:00 local (01:00 UTC); on 2026-10-25 it exists twice and runs once.
        let night = Schedule::parse("30 2 * * *").unwrap();
        assert_eq!(
            night.next_after(utc("2026-03-28T12:00:00Z"), berlin),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        let first = night
            .next_after(utc("2026-10-24T12:00:00Z"), berlin)
            .unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert!(night.next_after(first, berlin).unwrap() >= utc("2026-10-26T00:00:00Z"));
    }

    #[test]
    fn the_first_working_day_of_the_month() {
        let zone: Tz = "UTC".parse().unwrap();
        let review = Schedule::parse("0 9 1W * *").unwrap();
        // 2026-08-01 is a Saturday: Monday the 3rd; 2026-11-01 a Sunday: Monday the 2nd.
        assert_eq!(
            review.next_after(utc("2026-07-15T00:00:00Z"), zone),
            Some(utc("2026-08-03T09:00:00Z"))
        );
        assert_eq!(
            review.next_after(utc("2026-10-15T00:00:00Z"), zone),
            Some(utc("2026-11-02T09:00:00Z"))
        );
        assert_eq!(
            review.next_after(utc("2026-11-15T00:00:00Z"), zone),
            Some(utc("2026-12-01T09:00:00Z"))
        );
    }

    #[test]
    fn runs_missed_while_down_are_made_once() {
        let zone: Tz = "UTC".parse().unwrap();
        let daily = Schedule::parse("0 0 8 * * *").unwrap();
        let last = utc("2026-05-01T08:00:00Z");
        assert_eq!(daily.due(last, utc("2026-05-02T07:59:59Z"), zone), None);
        assert_eq!(
            daily.due(last, utc("2026-05-02T08:00:00Z"), zone),
            Some(utc("2026-05-02T08:00:00Z"))
        );
        // Down for three days: one run, as the latest missed one.
        assert_eq!(
            daily.due(last, utc("2026-05-04T12:00:00Z"), zone),
            Some(utc("2026-05-04T08:00:00Z"))
        );
    }

    #[test]
    fn a_bad_expression_is_named() {
        let err = Schedule::parse("0 25 * * *").unwrap_err();
        assert!(
            err.contains("`0 25 * * *` is not a cron expression"),
            "{err}"
        );
        assert!(Schedule::parse("every day").is_err());
    }
}
