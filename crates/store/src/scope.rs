//! Which services a detector looks at: all, a fixed list (a sidecar), or the services of the
//! hash buckets this replica holds (see [`crate::leases`]).

use diesel::sql_types::{Integer, Text};

#[diesel::declare_sql_function]
extern "SQL" {
    /// The migration's `threesigma_service_bucket(service, buckets)`.
    fn threesigma_service_bucket(service: Text, buckets: Integer) -> Integer;
}

/// A detector's share of the services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every service.
    All,
    /// These services only (sidecar mode).
    Services(Vec<String>),
    /// Services whose bucket (of `buckets`) is in `held`.
    Buckets { buckets: i32, held: Vec<i32> },
}

impl Scope {
    /// Whether the scope covers every service (a replica holding every bucket does).
    pub fn is_all(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Services(_) => false,
            Scope::Buckets { buckets, held } => {
                i32::try_from(held.len()).is_ok_and(|n| n >= *buckets)
            }
        }
    }
}

/// Adds the scope's filter on a service column to a boxed query: `filter`, or `having` for
/// a grouped query, so that the bucket hash runs once per group rather than once per row.
macro_rules! scoped {
    ($query:expr, $scope:expr, $column:expr, $clause:ident) => {
        match $scope {
            scope if scope.is_all() => $query,
            $crate::scope::Scope::Services(services) => {
                $query.$clause($column.eq_any(services.clone()))
            }
            $crate::scope::Scope::Buckets { buckets, held } => $query.$clause(
                $crate::scope::threesigma_service_bucket($column, *buckets).eq_any(held.clone()),
            ),
            $crate::scope::Scope::All => $query,
        }
    };
    ($query:expr, $scope:expr, $column:expr) => {
        scoped!($query, $scope, $column, filter)
    };
}

pub(crate) use scoped;
