//! Numbers and dates as the charts print them: values in their unit, axis ticks, date labels.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::Unit;

/// `value` in `unit`; `decimals` fixes the fraction digits (axis ticks share one step), `None`
/// picks them from the magnitude and drops trailing zeros.
pub(crate) fn format_in_unit(
    value: f64,
    unit: Unit,
    currency: &str,
    decimals: Option<usize>,
) -> String {
    if value.is_nan() {
        return "n/a".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "∞" } else { "-∞" }.to_owned();
    }
    let value = if unit == Unit::Percent {
        value * 100.0
    } else {
        value
    };
    let number = |decimals_by_magnitude: usize| match decimals {
        Some(d) => grouped(value.abs(), d, false),
        None => grouped(value.abs(), decimals_by_magnitude, true),
    };
    let auto = auto_decimals(value);
    let (magnitude, negative) = match unit {
        // Money keeps its cents ("$1,234.50"), unless ticks ask for fewer digits.
        Unit::Currency => (
            grouped(value.abs(), decimals.unwrap_or(2), false),
            value < 0.0,
        ),
        Unit::Count if value.fract() == 0.0 => (number(0), value < 0.0),
        _ => (number(auto), value < 0.0),
    };
    // Rounding can print "0.00" for -0.001: no minus sign in front of a zero.
    let negative = negative && !is_zero_text(&magnitude);
    let sign = if negative { "-" } else { "" };
    match unit {
        Unit::Number | Unit::Count => format!("{sign}{magnitude}"),
        Unit::Hours => format!("{sign}{magnitude} h"),
        Unit::Days => format!("{sign}{magnitude} d"),
        Unit::PerDay => format!("{sign}{magnitude} /day"),
        Unit::Percent => format!("{sign}{magnitude} %"),
        Unit::Currency => match currency {
            "USD" => format!("{sign}${magnitude}"),
            "" => format!("{sign}{magnitude}"),
            code => format!("{sign}{magnitude} {code}"),
        },
    }
}

fn is_zero_text(digits: &str) -> bool {
    digits.chars().all(|c| matches!(c, '0' | '.' | ','))
}

/// Three significant digits or so: "1,234", "12.5", "1.25", "0.125".
fn auto_decimals(value: f64) -> usize {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    }
}

/// A non-negative number with `decimals` fraction digits and a comma every three integer digits.
fn grouped(magnitude: f64, decimals: usize, trim_zeros: bool) -> String {
    let fixed = format!("{magnitude:.decimals$}");
    let (integer, fraction) = match fixed.split_once('.') {
        Some((integer, fraction)) => (integer, fraction),
        None => (fixed.as_str(), ""),
    };
    let mut out = String::with_capacity(fixed.len() + integer.len() / 3);
    for (i, digit) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    let fraction = if trim_zeros {
        fraction.trim_end_matches('0')
    } else {
        fraction
    };
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// Evenly spaced round values covering `lo..=hi`, at most `max_ticks` of them (at least two).
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let max_ticks = max_ticks.max(2);
    let rough = (hi - lo) / (max_ticks - 1) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|step| ((hi / step).ceil() - (lo / step).floor()) as usize + 1 <= max_ticks)
        .unwrap_or(10.0 * power);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// Fraction digits that tell ticks `step` apart ("0.25" needs two, "500" none).
pub(crate) fn decimals_for_step(step: f64, unit: Unit) -> usize {
    let step = if unit == Unit::Percent {
        step * 100.0
    } else {
        step
    };
    let mut decimals = 0;
    let mut scaled = step.abs();
    while decimals < 6 && (scaled - scaled.round()).abs() > 1e-9 * scaled.max(1.0) {
        scaled *= 10.0;
        decimals += 1;
    }
    decimals
}

/// How a time axis labels its ticks, chosen from the span it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// "14:00", within about two days.
    Hour,
    /// "Mar 03".
    Day,
    /// "2026-03", for long spans or monthly data.
    Month,
}

/// Days since 1970-01-01 (fractional: time of day) as a local date and time.
pub(crate) fn days_to_datetime(days: f64) -> Option<NaiveDateTime> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?.and_hms_opt(0, 0, 0)?;
    let millis = (days * 86_400_000.0).round();
    if !millis.is_finite() || millis.abs() > 1e16 {
        return None;
    }
    epoch.checked_add_signed(chrono::TimeDelta::milliseconds(millis as i64))
}

pub(crate) fn date_to_days(date: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as f64
}

pub(crate) fn format_date(days: f64, style: DateStyle) -> String {
    match days_to_datetime(days) {
        Some(at) => match style {
            DateStyle::Hour => at.format("%H:%M").to_string(),
            DateStyle::Day => at.format("%b %d").to_string(),
            DateStyle::Month => at.format("%Y-%m").to_string(),
        },
        None => String::new(),
    }
}

/// Tick positions on a time axis over `lo..=hi` (days), at most `max_ticks`, on round dates:
/// hours, days, weeks (Mondays) or month starts.
pub(crate) fn date_ticks(
    lo: f64,
    hi: f64,
    max_ticks: usize,
    monthly_data: bool,
) -> (Vec<f64>, DateStyle) {
    let max_ticks = max_ticks.max(2);
    let span = hi - lo;
    if span <= 2.0 && !monthly_data {
        for hours in [1.0, 2.0, 3.0, 6.0, 12.0] {
            let step = hours / 24.0;
            if (span / step) as usize + 1 <= max_ticks {
                return (stepped(lo, hi, step, 0.0), DateStyle::Hour);
            }
        }
    }
    if span <= 120.0 && !monthly_data {
        for days in [1.0, 2.0, 7.0, 14.0, 28.0] {
            if (span / days) as usize + 1 <= max_ticks {
                // 1970-01-05 was a Monday: weekly ticks fall on Mondays.
                let origin = if days >= 7.0 { 4.0 } else { 0.0 };
                return (stepped(lo, hi, days, origin), DateStyle::Day);
            }
        }
    }
    let (Some(start), Some(end)) = (days_to_datetime(lo), days_to_datetime(hi)) else {
        return (vec![lo, hi], DateStyle::Day);
    };
    let months_apart = |a: NaiveDate, b: NaiveDate| {
        (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32
    };
    let span_months = months_apart(start.date(), end.date()).max(1);
    let every = [1, 2, 3, 6, 12, 24, 60]
        .into_iter()
        .find(|m| (span_months / m) as usize + 1 <= max_ticks)
        .unwrap_or(120);
    let mut ticks = Vec::new();
    let mut year = start.year();
    let mut month = start.month0() as i32;
    // Round down to a month that is a multiple of the step, so ticks read Jan, Apr, Jul, Oct.
    month -= month % every.min(12);
    loop {
        let Some(first) = NaiveDate::from_ymd_opt(year + month / 12, (month % 12) as u32 + 1, 1)
        else {
            break;
        };
        let days = date_to_days(first);
        if days > hi + 1e-9 {
            break;
        }
        if days >= lo - 1e-9 {
            ticks.push(days);
        }
        month += every;
        if month >= 12 {
            year += month / 12;
            month %= 12;
        }
    }
    if ticks.is_empty() {
        ticks.push(lo);
    }
    (ticks, DateStyle::Month)
}

fn stepped(lo: f64, hi: f64, step: f64, origin: f64) -> Vec<f64> {
    let first = ((lo - origin) / step - 1e-9).ceil();
    let last = ((hi - origin) / step + 1e-9).floor();
    (first as i64..=last as i64)
        .map(|k| origin + k as f64 * step)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: f64, unit: Unit) -> String {
        format_in_unit(v, unit, "USD", None)
    }

    #[test]
    fn units() {
        assert_eq!(value(12.5, Unit::Hours), "12.5 h");
        assert_eq!(value(24.0, Unit::Hours), "24 h");
        assert_eq!(value(1234.4, Unit::Hours), "1,234 h");
        assert_eq!(value(0.153, Unit::Percent), "15.3 %");
        assert_eq!(value(1.0, Unit::Percent), "100 %");
        assert_eq!(value(-0.05, Unit::Percent), "-5 %");
        assert_eq!(value(3.25, Unit::Days), "3.25 d");
        assert_eq!(value(1.4, Unit::PerDay), "1.4 /day");
        assert_eq!(value(1234.0, Unit::Count), "1,234");
        assert_eq!(value(1234567.0, Unit::Number), "1,234,567");
        assert_eq!(value(0.1234, Unit::Number), "0.123");
        assert_eq!(value(f64::NAN, Unit::Number), "n/a");
    }

    #[test]
    fn currency() {
        assert_eq!(
            format_in_unit(1234.56, Unit::Currency, "USD", None),
            "$1,234.56"
        );
        assert_eq!(
            format_in_unit(-1234.5, Unit::Currency, "USD", None),
            "-$1,234.50"
        );
        assert_eq!(
            format_in_unit(1234567.891, Unit::Currency, "EUR", None),
            "1,234,567.89 EUR"
        );
        assert_eq!(format_in_unit(-0.001, Unit::Currency, "USD", None), "$0.00");
        assert_eq!(
            format_in_unit(999.999, Unit::Currency, "USD", None),
            "$1,000.00"
        );
        assert_eq!(format_in_unit(5.0, Unit::Currency, "", None), "5.00");
        // Ticks fix their digits by step: 2,500 apart needs none.
        assert_eq!(
            format_in_unit(12_500.0, Unit::Currency, "USD", Some(0)),
            "$12,500"
        );
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (ticks, step) = nice_ticks(0.0, 97.0, 6);
        assert_eq!(step, 20.0);
        assert_eq!(ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (ticks, step) = nice_ticks(0.0, 0.153, 5);
        assert_eq!(step, 0.05);
        assert_eq!(ticks.len(), 5);
        assert_eq!(decimals_for_step(0.05, Unit::Percent), 0);
        assert_eq!(decimals_for_step(0.25, Unit::Number), 2);
    }

    #[test]
    fn date_ticks_by_span() {
        let march_1 = date_to_days(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        let (ticks, style) = date_ticks(march_1, march_1 + 13.0, 20, false);
        assert_eq!(style, DateStyle::Day);
        assert_eq!(ticks.len(), 14);
        assert_eq!(format_date(ticks[2], style), "Mar 03");
        let (ticks, style) = date_ticks(march_1, march_1 + 365.0, 6, false);
        assert_eq!(style, DateStyle::Month);
        assert!(ticks.len() <= 6, "{ticks:?}");
        // Quarterly from March: the first quarter start inside is April.
        assert_eq!(format_date(ticks[0], style), "2026-04");
    }
}
