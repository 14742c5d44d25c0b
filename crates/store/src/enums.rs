//! Domain enums in `text` columns. Rows hold the domain's own types ([`Signal`],
//! [`Status`], [`Severity`], [`EventKind`], [`Algorithm`], [`Reach`]); [`Stored`] is how diesel reads and writes them:
//! the enum's stored name on the way in, a parse on the way out, so a value the domain does
//! not know is a typed deserialization error naming it, never a panic or a stray string.
//! Queries compare columns with `Stored(Status::Resolved)`, never a string literal.

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use domain::detection::{Algorithm, Reach};
use domain::{EventKind, Named, Severity, Signal, Status};

/// A domain enum as it is stored: its name, in a `text` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Stored<T: Named>(pub T);

impl<T: Named> ToSql<Text, Pg> for Stored<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_str().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl<T: Named> FromSql<Text, Pg> for Stored<T> {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = std::str::from_utf8(bytes.as_bytes())?;
        Ok(Stored(text.parse::<T>()?))
    }
}

/// The conversions diesel's `serialize_as` / `deserialize_as` row attributes need.
macro_rules! stored {
    ($($type:ty),+) => {$(
        impl From<$type> for Stored<$type> {
            fn from(value: $type) -> Self {
                Stored(value)
            }
        }

        impl From<Stored<$type>> for $type {
            fn from(stored: Stored<$type>) -> Self {
                stored.0
            }
        }
    )+};
}

stored!(Signal, Status, Severity, EventKind, Algorithm, Reach);
