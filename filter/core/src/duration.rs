//! Go-syntax durations (`"1h30m"`, `"90s"`, `"500ms"`), as OAuth2-Proxy's options are written.

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    Negative,
    MissingUnit,
    UnknownUnit(String),
    InvalidNumber,
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty; write a Go duration such as \"1h\" or \"90s\""),
            Self::Negative => f.write_str("must not be negative"),
            Self::MissingUnit => {
                f.write_str("has a number without a unit; use ns, us, ms, s, m or h (e.g. \"30s\")")
            }
            Self::UnknownUnit(u) => write!(f, "has unknown unit {u:?}; use ns, us, ms, s, m or h"),
            Self::InvalidNumber => f.write_str("is not a Go duration such as \"1h30m\" or \"90s\""),
            Self::Overflow => f.write_str("is too large"),
        }
    }
}

/// The longest Go duration, `2562047h47m16.854775807s`.
const MAX_GO_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration. `"0"` alone is allowed, as in Go.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationError::InvalidNumber);
        }
        let (number, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "" => return Err(DurationError::MissingUnit),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        total_nanos = total_nanos
            .checked_add(scaled(number, unit_nanos)?)
            .ok_or(DurationError::Overflow)?;
        rest = next;
    }
    // Go's own limit: a duration is an i64 of nanoseconds (about 292 years).
    if total_nanos > MAX_GO_NANOS {
        return Err(DurationError::Overflow);
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one dot) times `unit_nanos`, exact to the nanosecond.
fn scaled(number: &str, unit_nanos: u128) -> Result<u128, DurationError> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(DurationError::InvalidNumber);
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| DurationError::Overflow)?
    };
    let mut value = whole
        .checked_mul(unit_nanos)
        .ok_or(DurationError::Overflow)?;
    let mut scale = unit_nanos;
    for digit in frac.bytes().take(18) {
        scale /= 10;
        let digit = u128::from(
            digit
                .checked_sub(b'0')
                .ok_or(DurationError::InvalidNumber)?,
        );
        value = digit
            .checked_mul(scale)
            .and_then(|d| value.checked_add(d))
            .ok_or(DurationError::Overflow)?;
    }
    Ok(value)
}

/// Formats a duration the way Go prints it (`"168h0m0s"` is shortened to `"168h"`), for messages.
pub fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("1h", 3_600_000),
            ("4h", 4 * 3_600_000),
            ("168h", 168 * 3_600_000),
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("0", 0),
            ("2m3s", 123_000),
            (".5s", 500),
        ];
        for (input, millis) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_millis(millis)),
                "{input}"
            );
        }
        assert_eq!(parse_go_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_go_duration("3ns"), Ok(Duration::from_nanos(3)));
    }

    #[test]
    fn refuses_what_go_refuses() {
        assert_eq!(parse_go_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_go_duration("-1h"), Err(DurationError::Negative));
        assert_eq!(parse_go_duration("10"), Err(DurationError::MissingUnit));
        assert_eq!(
            parse_go_duration("1d"),
            Err(DurationError::UnknownUnit("d".into()))
        );
        assert_eq!(parse_go_duration("h"), Err(DurationError::InvalidNumber));
        assert_eq!(
            parse_go_duration("1..2s"),
            Err(DurationError::InvalidNumber)
        );
        assert!(parse_go_duration("99999999999999999999999999999h").is_err());
        assert!(
            parse_go_duration("2562047h47m16.854775807s").is_ok(),
            "Go's maximum"
        );
        assert_eq!(
            parse_go_duration("2562048h"),
            Err(DurationError::Overflow),
            "past Go's maximum"
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(168 * 3600)), "168h");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
