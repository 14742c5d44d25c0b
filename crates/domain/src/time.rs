//! Time as threesigma sees it: event timestamps in every shape shippers send, and the
//! per-minute buckets detection works in.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole UTC minute, counted from the Unix epoch. Rollups and detection work in these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Minute(pub i64);

impl Minute {
    /// The minute that contains `at`.
    pub fn containing(at: DateTime<Utc>) -> Minute {
        Minute(at.timestamp().div_euclid(60))
    }

    /// The instant the minute starts.
    pub fn start(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0.saturating_mul(60), 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn plus(self, minutes: i64) -> Minute {
        Minute(self.0 + minutes)
    }

    pub fn minus(self, minutes: i64) -> Minute {
        Minute(self.0 - minutes)
    }

    /// Whole minutes from `earlier` to `self`.
    pub fn since(self, earlier: Minute) -> i64 {
        self.0 - earlier.0
    }
}

impl std::fmt::Display for Minute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.start().to_rfc3339())
    }
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp {0:?} is neither RFC 3339 nor epoch seconds/ms/µs/ns")]
    Unparseable(String),
    #[error("timestamp must be a string or a number")]
    WrongType,
    #[error("timestamp {0} is out of range")]
    OutOfRange(String),
}

/// Parses an event timestamp: an RFC 3339 string, or epoch seconds, milliseconds,
/// microseconds or nanoseconds as a number or a numeric string. The unit of an epoch number
/// is told by its magnitude, as Vector and Loki clients do: below 10^11 seconds (fractions
/// allowed), below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds. Storage
/// keeps microseconds, so nanoseconds are truncated.
pub fn parse_timestamp(value: &Value) -> Result<DateTime<Utc>, TimestampError> {
    match value {
        Value::String(text) => parse_timestamp_text(text),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                epoch_integer(integer)
            } else if let Some(integer) = number.as_u64() {
                i64::try_from(integer)
                    .map_err(|_| TimestampError::OutOfRange(number.to_string()))
                    .and_then(epoch_integer)
            } else {
                let float = number
                    .as_f64()
                    .ok_or_else(|| TimestampError::Unparseable(number.to_string()))?;
                epoch_float(float)
            }
        }
        _ => Err(TimestampError::WrongType),
    }
}

/// Parses a timestamp written as text (RFC 3339 or an epoch number).
pub fn parse_timestamp_text(text: &str) -> Result<DateTime<Utc>, TimestampError> {
    let trimmed = text.trim();
    if let Ok(parsed) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(parsed.with_timezone(&Utc));
    }
    if let Ok(integer) = trimmed.parse::<i64>() {
        return epoch_integer(integer);
    }
    if let Ok(float) = trimmed.parse::<f64>() {
        return epoch_float(float);
    }
    Err(TimestampError::Unparseable(text.to_owned()))
}

fn epoch_integer(value: i64) -> Result<DateTime<Utc>, TimestampError> {
    let magnitude = value.unsigned_abs();
    let micros = if magnitude < 100_000_000_000 {
        value.checked_mul(1_000_000)
    } else if magnitude < 100_000_000_000_000 {
        value.checked_mul(1_000)
    } else if magnitude < 100_000_000_000_000_000 {
        Some(value)
    } else {
        Some(value.div_euclid(1_000))
    };
    micros
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| TimestampError::OutOfRange(value.to_string()))
}

fn epoch_float(value: f64) -> Result<DateTime<Utc>, TimestampError> {
    if !value.is_finite() {
        return Err(TimestampError::OutOfRange(value.to_string()));
    }
    let magnitude = value.abs();
    let scale = if magnitude < 1e11 {
        1e6
    } else if magnitude < 1e14 {
        1e3
    } else if magnitude < 1e17 {
        1.0
    } else {
        1e-3
    };
    let micros = (value * scale).floor();
    if micros.abs() > 9.0e18 {
        return Err(TimestampError::OutOfRange(value.to_string()));
    }
    // The range check above makes the conversion exact enough and overflow-free.
    #[allow(clippy::cast_possible_truncation)]
    DateTime::<Utc>::from_timestamp_micros(micros as i64)
        .ok_or_else(|| TimestampError::OutOfRange(value.to_string()))
}

/// Truncates to whole microseconds, the precision PostgreSQL keeps.
pub fn to_storage_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn rfc3339_with_offsets() {
        assert_eq!(
            parse_timestamp(&json!("2026-11-25T17:32:28+00:00")).unwrap(),
            at("2026-11-25T17:32:28Z")
        );
        assert_eq!(
            parse_timestamp(&json!("2026-11-25T18:32:28.5+01:00")).unwrap(),
            at("2026-11-25T17:32:28.5Z")
        );
    }

    #[test]
    fn epoch_units_by_magnitude() {
        let expected = at("2026-11-25T17:32:28Z");
        assert_eq!(parse_timestamp(&json!(1_795_627_948)).unwrap(), expected);
        assert_eq!(
            parse_timestamp(&json!(1_795_627_948_000u64)).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp(&json!(1_795_627_948_000_000u64)).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp(&json!(1_795_627_948_000_000_000u64)).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp(&json!("1795627948000000000")).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp(&json!(1_795_627_948.25)).unwrap(),
            at("2026-11-25T17:32:28.25Z")
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            parse_timestamp(&json!("yesterday")),
            Err(TimestampError::Unparseable(_))
        ));
        assert_eq!(
            parse_timestamp(&json!(null)),
            Err(TimestampError::WrongType)
        );
        assert_eq!(parse_timestamp(&json!([1])), Err(TimestampError::WrongType));
    }

    #[test]
    fn minutes_floor_towards_the_past() {
        let minute = Minute::containing(at("2026-11-25T17:32:59.999Z"));
        assert_eq!(minute.start(), at("2026-11-25T17:32:00Z"));
        assert_eq!(Minute::containing(at("1969-12-31T23:59:30Z")), Minute(-1));
    }

    proptest! {
        #[test]
        fn epoch_seconds_ms_us_ns_agree(seconds in 1_000_000_000i64..4_000_000_000) {
            let from_seconds = parse_timestamp(&json!(seconds)).unwrap();
            prop_assert_eq!(parse_timestamp(&json!(seconds * 1_000)).unwrap(), from_seconds);
            prop_assert_eq!(parse_timestamp(&json!(seconds * 1_000_000)).unwrap(), from_seconds);
            prop_assert_eq!(parse_timestamp(&json!(seconds * 1_000_000_000)).unwrap(), from_seconds);
            prop_assert_eq!(parse_timestamp(&json!(from_seconds.to_rfc3339())).unwrap(), from_seconds);
        }

        #[test]
        fn minute_contains_its_instants(micros in -10_000_000_000_000_000i64..10_000_000_000_000_000) {
            let instant = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            let minute = Minute::containing(instant);
            prop_assert!(minute.start() <= instant);
            prop_assert!(instant < minute.plus(1).start());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = parse_timestamp_text(&text);
        }

        #[test]
        fn arbitrary_floats_never_panic(value in proptest::num::f64::ANY) {
            let _ = epoch_float(value);
        }
    }
}
