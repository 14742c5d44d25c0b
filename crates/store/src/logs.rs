//! Reads of stored logs. Every read is a keyset page on (ts DESC, id DESC): newest first,
//! each page starting strictly after the last row of the previous one.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreResult;
use crate::models::LogRow;
use crate::schema::logs;

/// Which logs a page lists.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub service: Option<String>,
    /// Lowest stored level number to include.
    pub min_level: Option<i16>,
    /// Event time at or after.
    pub since: Option<DateTime<Utc>>,
    /// Event time before.
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the message.
    pub text: Option<String>,
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// One page of logs, newest first, strictly after the keyset position `after` (`ts`, `id`).
pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &LogFilter,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> StoreResult<Vec<LogRow>> {
    let mut query = logs::table
        .select(LogRow::as_select())
        .order((logs::ts.desc(), logs::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(service) = &filter.service {
        query = query.filter(logs::service.eq(service.clone()));
    }
    if let Some(level) = filter.min_level {
        query = query.filter(logs::level.ge(level));
    }
    if let Some(since) = filter.since {
        query = query.filter(logs::ts.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(logs::ts.lt(until));
    }
    if let Some(text) = &filter.text {
        query = query.filter(logs::message.ilike(like_literal(text)));
    }
    if let Some((ts, id)) = after {
        // `ts <= $1` bounds the index scan; the OR only settles ties on ts.
        query = query.filter(logs::ts.le(ts).and(logs::ts.lt(ts).or(logs::id.lt(id))));
    }
    Ok(query.load(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_literal("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
