//! Reads of stored logs. Every read is a keyset page on (ts DESC, id DESC): newest first,
//! each page starting strictly after the last row of the previous one.
//!
//! A search ([`search`]) reads the requested time range in slices, newest first: each slice
//! a bounded query, twice as wide as the one before while slices stay quick. When the page
//! is full it stops; when its time budget is spent it stops too and says where it got to,
//! so a search over a very wide range or a rare substring is paged, never timed out.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::search::Search;

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
    /// Case-insensitive substring of the message (`ILIKE`: scanned, not indexed).
    pub text: Option<String>,
    /// Search terms every row must hold (`terms @> ...`). Terms find candidates; [`search`]
    /// re-checks them.
    pub terms: Vec<i32>,
    /// Event-time ranges `[from, to)` a row must fall in one of (empty: no such bound): the
    /// blocks of the term index that may hold the terms.
    pub ranges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
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

type BoxedLogs<'a> = logs::BoxedQuery<
    'a,
    diesel::pg::Pg,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<LogRow, diesel::pg::Pg>>,
>;

/// The rows `filter` allows strictly after the keyset position `after` (`ts`, `id`), in no
/// particular order.
fn matching(filter: &LogFilter, after: Option<(DateTime<Utc>, i64)>) -> BoxedLogs<'static> {
    let mut query = logs::table.select(LogRow::as_select()).into_boxed();
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
    if !filter.terms.is_empty() {
        query = query.filter(logs::terms.contains(filter.terms.clone()));
    }
    let mut ranges = filter.ranges.iter().map(|(from, to)| {
        Box::new(logs::ts.ge(*from).and(logs::ts.lt(*to)))
            as Box<
                dyn BoxableExpression<
                        logs::table,
                        diesel::pg::Pg,
                        SqlType = diesel::sql_types::Bool,
                    >,
            >
    });
    if let Some(first) = ranges.next() {
        query = query.filter(ranges.fold(first, |any, range| Box::new(any.or(range))));
    }
    if let Some((ts, id)) = after {
        // `ts <= $1` bounds the index scan; the OR only settles ties on ts.
        query = query.filter(logs::ts.le(ts).and(logs::ts.lt(ts).or(logs::id.lt(id))));
    }
    query
}

/// One page of logs, newest first, strictly after the keyset position `after` (`ts`, `id`).
pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &LogFilter,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> StoreResult<Vec<LogRow>> {
    Ok(matching(filter, after)
        .order((logs::ts.desc(), logs::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

/// A search page: what was found, and where the next page starts.
#[derive(Debug)]
pub struct Found {
    pub rows: Vec<LogRow>,
    /// The keyset position the next page starts after: the last row returned when the page
    /// is full, or the point the scan reached when the time budget ran out (the page may
    /// then hold fewer rows than asked, even none). `None`: the range is exhausted.
    pub next: Option<(DateTime<Utc>, i64)>,
}

/// The first slice of a search, and the bounds of how a slice's width adapts.
const FIRST_SLICE: Duration = Duration::from_secs(60);
/// Candidate blocks read by one statement.
const BLOCKS_PER_READ: usize = 32;
/// Most candidate rows of a group of blocks read at once.
const GROUP_ROWS: i64 = 5_000;
/// A slice that took less than this doubles the next one's width...
const QUICK_SLICE: Duration = Duration::from_millis(50);
/// ... and one that took more than this halves it.
const SLOW_SLICE: Duration = Duration::from_millis(400);

/// Rows matching `filter` (with `since` set: the range's floor) and `search`, newest first,
/// strictly after `after`, at most `limit` of them, read in time slices until the page is
/// full, the range is exhausted or `budget` is spent. With search terms, a slice reads only
/// the blocks of the term index that may hold them ([`crate::search::candidate_blocks`]).
/// Every row the database returns is checked with [`Search::matches`]: terms can collide
/// and phrases need their word order.
pub async fn search(
    conn: &mut AsyncPgConnection,
    filter: &LogFilter,
    search: &Search,
    after: Option<(DateTime<Utc>, i64)>,
    limit: usize,
    budget: Duration,
) -> StoreResult<Found> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, crate::error::StoreError, _>(async |conn| {
        // Every statement planned for its own values: a search's statements repeat with
        // different time ranges, and after five runs PostgreSQL may switch a cached
        // statement to a generic plan that assumes any range, e.g. a scan of a whole day's
        // partition for ten seconds of candidate blocks.
        diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(conn)
            .await?;
        search_in(conn, filter, search, after, limit, budget).await
    })
    .await
}

async fn search_in(
    conn: &mut AsyncPgConnection,
    filter: &LogFilter,
    search: &Search,
    after: Option<(DateTime<Utc>, i64)>,
    limit: usize,
    budget: Duration,
) -> StoreResult<Found> {
    let mut scan = Scan {
        search,
        limit,
        budget,
        started: Instant::now(),
        found: Vec::with_capacity(limit + 1),
        position: after,
    };
    let floor = filter.since;
    // The newest row the plain filters allow: slices start there, not at `until` or now,
    // which may be far above the data.
    let unsearched = LogFilter {
        text: None,
        terms: Vec::new(),
        ..filter.clone()
    };
    let Some(newest) = page(conn, &unsearched, after, 1).await?.pop() else {
        return Ok(scan.end(None));
    };
    let mut slice_end = newest.ts + chrono::Duration::microseconds(1);
    let mut width = FIRST_SLICE;
    loop {
        let width_chrono = chrono::Duration::from_std(width).unwrap_or(chrono::Duration::MAX);
        let start = match (floor, slice_end.checked_sub_signed(width_chrono)) {
            (Some(floor), Some(start)) => Some(start.max(floor)),
            (None, start) => start,
            (Some(floor), None) => Some(floor),
        };
        let slice_started = Instant::now();
        let slice = LogFilter {
            since: start,
            ..filter.clone()
        };
        let blocks = match start {
            Some(start) if !filter.terms.is_empty() => {
                Some(crate::search::candidate_blocks(conn, &filter.terms, start, slice_end).await?)
            }
            _ => None,
        };
        // Candidate blocks a minority of the slice: read just those, a group of blocks per
        // statement; else the whole slice in one pass.
        let slice_blocks =
            i64::try_from(width.as_secs()).unwrap_or(i64::MAX) / domain::search::BLOCK_SECONDS;
        let outcome = match blocks {
            Some(blocks)
                if i64::try_from(blocks.len())
                    .unwrap_or(i64::MAX)
                    .saturating_mul(2)
                    < slice_blocks =>
            {
                let mut outcome = None;
                for group in blocks.chunks(BLOCKS_PER_READ) {
                    let group_filter = LogFilter {
                        ranges: group
                            .iter()
                            .map(|block| (*block, *block + crate::search::block_width()))
                            .collect(),
                        ..slice.clone()
                    };
                    outcome = scan.read_blocks(conn, &group_filter).await?;
                    if outcome.is_some() {
                        break;
                    }
                }
                outcome
            }
            _ => scan.read(conn, &slice).await?,
        };
        if let Some(found) = outcome {
            return Ok(found);
        }
        let Some(start) = start.filter(|start| Some(*start) != floor) else {
            return Ok(scan.end(None));
        };
        // Everything at or after `start` has been read.
        scan.position = Some((start, i64::MIN));
        slice_end = start;
        if scan.started.elapsed() >= budget {
            let position = scan.position;
            return Ok(scan.end(position));
        }
        let took = slice_started.elapsed();
        if took < QUICK_SLICE {
            width = width.saturating_mul(2);
        } else if took > SLOW_SLICE {
            width = (width / 2).max(Duration::from_secs(1));
        }
    }
}

/// A search page being filled.
struct Scan<'a> {
    search: &'a Search,
    limit: usize,
    budget: Duration,
    started: Instant,
    /// Rows that matched, newest first.
    found: Vec<LogRow>,
    /// The last keyset position read.
    position: Option<(DateTime<Utc>, i64)>,
}

impl Scan<'_> {
    fn end(self, next: Option<(DateTime<Utc>, i64)>) -> Found {
        Found {
            rows: self.found,
            next,
        }
    }

    /// Reads `range` (a filter) below the current position, a page of candidates at a
    /// time, until it is exhausted (`None`), or the page is full or the budget spent (the
    /// finished page).
    async fn read(
        &mut self,
        conn: &mut AsyncPgConnection,
        range: &LogFilter,
    ) -> StoreResult<Option<Found>> {
        loop {
            let want = self.limit + 1 - self.found.len();
            let candidates = page(
                conn,
                range,
                self.position,
                i64::try_from(want).unwrap_or(i64::MAX),
            )
            .await?;
            let exhausted = candidates.len() < want;
            if let Some(found) = self.consider(candidates) {
                return Ok(Some(found));
            }
            if exhausted {
                return Ok(None);
            }
            if self.started.elapsed() >= self.budget {
                let next = self.position;
                return Ok(Some(self.take(next)));
            }
        }
    }

    /// Reads candidate blocks (`range.ranges`): all their matching rows at once, sorted
    /// here. Ordered and limited in SQL, the planner may walk the whole slice by time
    /// expecting the term to be common, where the blocks say it is rare. A group holding
    /// more than [`GROUP_ROWS`] candidates is read the ordered way after all.
    async fn read_blocks(
        &mut self,
        conn: &mut AsyncPgConnection,
        range: &LogFilter,
    ) -> StoreResult<Option<Found>> {
        let mut candidates: Vec<LogRow> = matching(range, self.position)
            .limit(GROUP_ROWS + 1)
            .load(conn)
            .await?;
        if candidates.len() > usize::try_from(GROUP_ROWS).unwrap_or(usize::MAX) {
            return self.read(conn, range).await;
        }
        candidates.sort_unstable_by_key(|row| std::cmp::Reverse((row.ts, row.id)));
        if let Some(found) = self.consider(candidates) {
            return Ok(Some(found));
        }
        if self.started.elapsed() >= self.budget {
            let next = self.position;
            return Ok(Some(self.take(next)));
        }
        Ok(None)
    }

    /// Checks `rows` (newest first) against the search and keeps the matches; the finished
    /// page once it holds more than `limit` (the extra row only says there is more).
    fn consider(&mut self, rows: Vec<LogRow>) -> Option<Found> {
        for row in rows {
            self.position = Some((row.ts, row.id));
            if self.search.matches(&row.message, &row.attributes) {
                self.found.push(row);
                if self.found.len() > self.limit {
                    self.found.truncate(self.limit);
                    let next = self.found.last().map(|row| (row.ts, row.id));
                    return Some(self.take(next));
                }
            }
        }
        None
    }

    fn take(&mut self, next: Option<(DateTime<Utc>, i64)>) -> Found {
        Found {
            rows: std::mem::take(&mut self.found),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_literal("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
