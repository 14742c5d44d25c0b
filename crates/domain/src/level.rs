//! Log severity levels: parsing every spelling shippers use, and the stored number.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A log level. The discriminant is what PostgreSQL stores (`logs.level smallint`); it is the
/// first OpenTelemetry `SeverityNumber` of the level's range, so OTLP severities map onto it
/// by range and the order of levels is the order of their numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace = 1,
    Debug = 5,
    Info = 9,
    Warn = 13,
    Error = 17,
    Fatal = 21,
}

/// Why a level value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error(
        "unknown level {0:?} (expected trace, debug, info, warn, error, fatal, a syslog severity 0-7 or an OpenTelemetry severity number 8-24)"
    )]
    Unknown(String),
    #[error(
        "level must be a string or a number (syslog severity 0-7, OpenTelemetry severity number 8-24)"
    )]
    WrongType,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// Parses a level name, case-insensitively, including the syslog keywords
    /// (`err`, `crit`, `emerg`, `alert`, `notice`) and syslog numbers written as text.
    pub fn parse(text: &str) -> Result<Level, LevelError> {
        let trimmed = text.trim();
        let level = match trimmed.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => Level::Fatal,
            other => match other.parse::<i64>() {
                Ok(number) => Level::from_number(number)
                    .ok_or_else(|| LevelError::Unknown(text.to_owned()))?,
                Err(_) => return Err(LevelError::Unknown(text.to_owned())),
            },
        };
        Ok(level)
    }

    /// Maps a syslog severity (RFC 5424: 0 emergency … 7 debug).
    pub fn from_syslog(number: i64) -> Option<Level> {
        Some(match number {
            0..=2 => Level::Fatal,
            3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }

    /// Maps an OpenTelemetry `SeverityNumber` (1–24); 0 means unspecified.
    pub fn from_otel_severity(number: i32) -> Option<Level> {
        Some(match number {
            1..=4 => Level::Trace,
            5..=8 => Level::Debug,
            9..=12 => Level::Info,
            13..=16 => Level::Warn,
            17..=20 => Level::Error,
            21..=24 => Level::Fatal,
            _ => return None,
        })
    }

    /// A numeric level: 0–7 is a syslog severity (RFC 5424), 8–24 an OpenTelemetry
    /// `SeverityNumber` (what OTLP clients and their JSON exporters send; 1–7 are read as
    /// syslog, where the two scales overlap, because plain JSON shippers send syslog), and
    /// pino's 30, 40, 50 and 60 (its 10 and 20 fall in the OpenTelemetry range).
    pub fn from_number(number: i64) -> Option<Level> {
        match number {
            0..=7 => Level::from_syslog(number),
            8..=24 => i32::try_from(number)
                .ok()
                .and_then(Level::from_otel_severity),
            30 | 40 | 50 | 60 => Level::from_pino(number),
            _ => None,
        }
    }

    /// Maps a pino (and bunyan) level: 10 trace, 20 debug, 30 info, 40 warn, 50 error,
    /// 60 fatal.
    pub fn from_pino(number: i64) -> Option<Level> {
        Some(match number {
            10 => Level::Trace,
            20 => Level::Debug,
            30 => Level::Info,
            40 => Level::Warn,
            50 => Level::Error,
            60 => Level::Fatal,
            _ => return None,
        })
    }

    /// Parses a JSON level: a name or a number (see [`Level::from_number`]).
    pub fn from_json(value: &Value) -> Result<Level, LevelError> {
        match value {
            Value::String(text) => Level::parse(text),
            Value::Number(number) => number
                .as_i64()
                .and_then(Level::from_number)
                .ok_or_else(|| LevelError::Unknown(number.to_string())),
            _ => Err(LevelError::WrongType),
        }
    }

    /// The number stored in `logs.level` and `log_counts.level`.
    pub fn as_i16(self) -> i16 {
        self as i16
    }

    /// The level stored as `number`, if it is one of ours.
    pub fn from_i16(number: i16) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_i16() == number)
    }

    /// The canonical lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Whether the level counts as an error for detection (ERROR and above).
    pub fn is_error(self) -> bool {
        self >= Level::Error
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = LevelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Level::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_documented_spelling_parses() {
        let cases = [
            ("trace", Level::Trace),
            ("DEBUG", Level::Debug),
            ("Info", Level::Info),
            ("notice", Level::Info),
            ("warn", Level::Warn),
            ("WARNING", Level::Warn),
            ("error", Level::Error),
            ("err", Level::Error),
            ("fatal", Level::Fatal),
            ("critical", Level::Fatal),
            ("crit", Level::Fatal),
            ("panic", Level::Fatal),
            ("emerg", Level::Fatal),
            ("alert", Level::Fatal),
            (" error ", Level::Error),
            ("3", Level::Error),
        ];
        for (text, expected) in cases {
            assert_eq!(Level::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn syslog_numbers_map_by_rfc5424() {
        let expected = [
            Level::Fatal,
            Level::Fatal,
            Level::Fatal,
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Info,
            Level::Debug,
        ];
        for (number, level) in expected.into_iter().enumerate() {
            assert_eq!(Level::from_json(&json!(number)), Ok(level));
        }
        assert!(Level::from_json(&json!(25)).is_err());
        assert!(Level::from_json(&json!(-1)).is_err());
        assert!(Level::from_json(&json!(3.5)).is_err());
        assert_eq!(Level::from_json(&json!(true)), Err(LevelError::WrongType));
    }

    #[test]
    fn opentelemetry_severity_numbers_beyond_syslog_map_by_range() {
        // What OTLP clients send: 17 is ERROR, 21 FATAL, 9 INFO, 13 WARN, 8 DEBUG4.
        for (number, level) in [
            (8, Level::Debug),
            (9, Level::Info),
            (13, Level::Warn),
            (17, Level::Error),
            (20, Level::Error),
            (21, Level::Fatal),
            (24, Level::Fatal),
        ] {
            assert_eq!(Level::from_json(&json!(number)), Ok(level), "{number}");
            assert_eq!(Level::parse(&number.to_string()), Ok(level), "{number}");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_value() {
        let error = Level::parse("verbose").unwrap_err();
        assert!(error.to_string().contains("\"verbose\""), "{error}");
    }

    #[test]
    fn errors_are_error_and_above() {
        assert!(!Level::Warn.is_error());
        assert!(Level::Error.is_error());
        assert!(Level::Fatal.is_error());
    }

    proptest! {
        #[test]
        fn stored_number_round_trips(index in 0usize..6) {
            let level = Level::ALL[index];
            prop_assert_eq!(Level::from_i16(level.as_i16()), Some(level));
            prop_assert_eq!(Level::parse(level.as_str()), Ok(level));
        }

        #[test]
        fn otel_ranges_agree_with_stored_numbers(number in 1i32..=24) {
            let level = Level::from_otel_severity(number).unwrap();
            prop_assert!(i32::from(level.as_i16()) <= number);
            prop_assert!(number < i32::from(level.as_i16()) + 4);
        }

        #[test]
        fn parsing_never_panics(text in ".{0,20}") {
            let _ = Level::parse(&text);
        }
    }
}
