//! Money: exact decimals as Arrow `Decimal128(38, 12)` integers, never floats (DESIGN §3).

use crate::schema::MONEY_SCALE;

/// Why a decimal did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a number at all.
    NotANumber,
    /// More fractional digits than the column's scale holds (we never round money).
    TooManyDecimals,
    /// Out of the column's range.
    TooLarge,
}

impl std::fmt::Display for DecimalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecimalError::NotANumber => "expected a decimal number",
            DecimalError::TooManyDecimals => "more decimal places than the 12 doracost keeps",
            DecimalError::TooLarge => "a number too large for Decimal128(38, 12)",
        })
    }
}

/// Parses a decimal string exactly into an integer scaled by `10^scale` (Arrow's Decimal128).
///
/// Accepts an optional sign, digits, an optional fraction and an optional exponent (`1.5E-7`, as
/// some exports write small amounts). Trailing zeros beyond `scale` are fine; other extra digits are
/// an error, never rounded.
pub fn parse_decimal(text: &str, scale: i8) -> Result<i128, DecimalError> {
    let b = text.trim().as_bytes();
    let (negative, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mantissa, exponent) = match b.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => {
            let exp = std::str::from_utf8(&b[i + 1..])
                .ok()
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or(DecimalError::NotANumber)?;
            (&b[..i], exp)
        }
        None => (b, 0),
    };
    let mut value: i128 = 0;
    let mut seen_digit = false;
    let mut fraction_digits: i32 = 0;
    let mut in_fraction = false;
    // Digits past the scale must be zeros; count them instead of multiplying.
    let mut dropped_nonzero = false;
    let wanted = i32::from(scale) + exponent;
    for &c in mantissa {
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                if in_fraction {
                    fraction_digits += 1;
                    if fraction_digits > wanted {
                        if c != b'0' {
                            dropped_nonzero = true;
                        }
                        continue;
                    }
                }
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(i128::from(c - b'0')))
                    .ok_or(DecimalError::TooLarge)?;
            }
            b'.' if !in_fraction => in_fraction = true,
            _ => return Err(DecimalError::NotANumber),
        }
    }
    if !seen_digit {
        return Err(DecimalError::NotANumber);
    }
    if dropped_nonzero {
        return Err(DecimalError::TooManyDecimals);
    }
    let kept_fraction = fraction_digits.min(wanted.max(0));
    let shift = wanted - kept_fraction;
    if shift < 0 {
        // Negative exponent larger than the scale: only exact if the low digits are zero.
        let divisor = 10i128
            .checked_pow(shift.unsigned_abs())
            .ok_or(DecimalError::TooManyDecimals)?;
        if value % divisor != 0 {
            return Err(DecimalError::TooManyDecimals);
        }
        value /= divisor;
    } else {
        let factor = 10i128
            .checked_pow(shift as u32)
            .ok_or(DecimalError::TooLarge)?;
        value = value.checked_mul(factor).ok_or(DecimalError::TooLarge)?;
    }
    if value >= 10i128.pow(38) {
        return Err(DecimalError::TooLarge);
    }
    Ok(if negative { -value } else { value })
}

/// Formats a `Decimal128` value of `scale` as plain decimal text, without trailing fractional zeros.
pub fn format_decimal(value: i128, scale: i8) -> String {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let (int_part, frac_part) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("0", "")
    };
    let frac = if digits.len() > scale {
        frac_part.to_string()
    } else {
        format!("{}{}", "0".repeat(scale - digits.len()), digits)
    };
    let frac = frac.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac}")
    }
}

/// Parses money text into the lake's `Decimal128(38, 12)` representation.
pub fn parse_money(text: &str) -> Result<i128, DecimalError> {
    parse_decimal(text, MONEY_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("0.00000080000", 12), Ok(800_000));
        assert_eq!(parse_decimal("12", 12), Ok(12_000_000_000_000));
        assert_eq!(parse_decimal("-1.5", 2), Ok(-150));
        assert_eq!(parse_decimal("1.50000000000000000", 2), Ok(150));
        assert_eq!(parse_decimal("1.5E-7", 12), Ok(150_000));
        assert_eq!(parse_decimal("2.5e2", 0), Ok(250));
        assert_eq!(
            parse_decimal("0.0000000000001", 12),
            Err(DecimalError::TooManyDecimals)
        );
        assert_eq!(parse_decimal("abc", 12), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("", 12), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("1.2.3", 12), Err(DecimalError::NotANumber));
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_decimal(800_000, 12), "0.0000008");
        assert_eq!(format_decimal(-150, 2), "-1.5");
        assert_eq!(format_decimal(12_000_000_000_000, 12), "12");
        assert_eq!(format_decimal(5, 0), "5");
        assert_eq!(
            parse_money(&format_decimal(-123_456_789, 12)),
            Ok(-123_456_789)
        );
    }
}
