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

/// Adds the scope's filter on a service column to a boxed query.
macro_rules! scoped {
    ($query:expr, $scope:expr, $column:expr) => {
        match $scope {
            $crate::scope::Scope::All => $query,
            $crate::scope::Scope::Services(services) => {
                $query.filter($column.eq_any(services.clone()))
            }
            $crate::scope::Scope::Buckets { buckets, held } => $query.filter(
                $crate::scope::threesigma_service_bucket($column, *buckets).eq_any(held.clone()),
            ),
        }
    };
}

pub(crate) use scoped;
