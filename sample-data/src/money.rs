//! Exact money: integer units of 1e-10 of a currency unit, never floating point.
//!
//! Quantities are kept in units of 1e-3 and unit prices in units of 1e-7, so their product is
//! exactly a number of 1e-10 units and every sum the generator reports is exact.

/// Money in units of 1e-10.
pub type Money = i128;

/// Units of 1e-10 in one currency unit.
pub const ONE: Money = 10_000_000_000;

/// Cost of `quantity_milli` (units of 1e-3) at `price_e7` (units of 1e-7 per unit).
pub fn cost(quantity_milli: i64, price_e7: i64) -> Money {
    i128::from(quantity_milli) * i128::from(price_e7)
}

/// Decimal string with 2 to 10 decimals (trailing zeros beyond two trimmed), e.g. `-12.5000000001`.
pub fn format_money(value: Money) -> String {
    format_fixed(value, 10, 2)
}

/// Decimal string of `value / 10^scale` with trailing zeros trimmed down to `min_decimals`.
pub fn format_fixed(value: i128, scale: u32, min_decimals: usize) -> String {
    let divisor = 10_i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let whole = abs / divisor as u128;
    let fraction = abs % divisor as u128;
    let mut digits = format!("{fraction:0width$}", width = scale as usize);
    while digits.len() > min_decimals && digits.ends_with('0') {
        digits.pop();
    }
    if digits.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{digits}")
    }
}

/// Parses a decimal string with at most 10 decimals into exact units of 1e-10.
pub fn parse_money(text: &str) -> Option<Money> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || fraction.len() > 10
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let fraction_units: i128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i128>().ok()? * 10_i128.pow(10 - fraction.len() as u32)
    };
    let value = whole * ONE + fraction_units;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_exactly() {
        // 24 h at $0.096/h = $2.304
        let ec2 = cost(24_000, 960_000);
        assert_eq!(format_money(ec2), "2.304");
        assert_eq!(format_money(-25 * ONE), "-25.00");
        assert_eq!(format_money(1), "0.0000000001");
        for text in ["2.304", "-25.00", "0.0000000001", "123456789.50"] {
            assert_eq!(format_money(parse_money(text).unwrap_or_default()), text);
        }
        assert_eq!(parse_money("1.00000000001"), None);
    }
}
