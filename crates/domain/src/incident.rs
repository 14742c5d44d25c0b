//! Incident vocabulary shared by the detector, the store and the query API.

use serde::{Deserialize, Serialize};

/// What an incident is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// ERROR-and-above events per minute.
    ErrorCount,
    /// ERROR-and-above events as a share of all events per minute.
    ErrorRate,
}

/// Where an incident is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Acknowledged,
    Resolved,
}

/// How strong the evidence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

/// One entry of an incident's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Escalated,
    Acknowledged,
    Resolved,
    Reopened,
}

/// Why a stored name did not match any variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

/// An enum known by name: stored in `text` columns, written in query strings and JSON.
pub trait Named:
    Copy + std::fmt::Debug + std::str::FromStr<Err = UnknownName> + Send + Sync + 'static
{
    /// Every variant.
    const ALL: &'static [Self];

    /// The stored and serialized name.
    fn as_str(self) -> &'static str;
}

/// Text names for enums stored as `text` columns and used in query strings.
macro_rules! named_enum {
    ($type:ident, $kind:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            /// Every variant.
            pub const ALL: &'static [$type] = &[$($type::$variant),+];

            /// The stored and serialized name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $name),+
                }
            }
        }

        impl Named for $type {
            const ALL: &'static [$type] = $type::ALL;

            fn as_str(self) -> &'static str {
                $type::as_str(self)
            }
        }

        impl std::str::FromStr for $type {
            type Err = UnknownName;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($name => Ok($type::$variant),)+
                    _ => Err(UnknownName { kind: $kind, value: value.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;

named_enum!(Signal, "signal", { ErrorCount => "error_count", ErrorRate => "error_rate" });
named_enum!(Status, "status", { Open => "open", Acknowledged => "acknowledged", Resolved => "resolved" });
named_enum!(Severity, "severity", { Warning => "warning", Critical => "critical" });
named_enum!(EventKind, "event kind", {
    Opened => "opened",
    Escalated => "escalated",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
    Reopened => "reopened",
});

impl Status {
    /// Open and acknowledged incidents are active: the detector keeps evaluating them.
    pub fn is_active(self) -> bool {
        self != Status::Resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for signal in Signal::ALL {
            assert_eq!(signal.as_str().parse::<Signal>(), Ok(*signal));
            assert_eq!(
                serde_json::to_value(signal).unwrap(),
                serde_json::Value::from(signal.as_str())
            );
        }
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(*status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
        for severity in Severity::ALL {
            assert_eq!(severity.as_str().parse::<Severity>(), Ok(*severity));
        }
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
        assert!("closed".parse::<Status>().is_err());
    }
}
