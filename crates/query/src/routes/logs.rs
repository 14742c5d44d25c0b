//! `/api/v1/logs`

use access::ReadAccess;
use actix_web::HttpRequest;
use actix_web::web::{Data, Json};
use chrono::{Duration, Utc};
use domain::Level;
use domain::search::Search;
use serde::Deserialize;
use store::logs::LogFilter;
use utoipa::IntoParams;
use web::ApiError;
use web::error::ErrorBody;

use super::{QueryState, into_page, parse_cursor, parse_name, parse_time};
use crate::api::{LogView, Page};
use crate::cursor::{self, CursorKind};

/// What a search covers when `since` is not given.
const DEFAULT_SEARCH_RANGE: Duration = Duration::hours(24);
/// Query parameters naming an attribute filter: `attr.<key>=<value>`.
const ATTRIBUTE_PREFIX: &str = "attr.";

/// Filters and paging of `GET /api/v1/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    pub service: Option<String>,
    /// Lowest level to include (`error` means error and fatal).
    #[param(schema_with = super::level_schema)]
    pub level: Option<String>,
    /// Event time at or after (RFC 3339, or epoch seconds).
    #[param(schema_with = super::time_schema)]
    pub since: Option<String>,
    /// Event time before (RFC 3339, or epoch seconds).
    #[param(schema_with = super::time_schema)]
    pub until: Option<String>,
    /// Words the message holds, case-insensitively, in any order (`card declined`); a
    /// `"quoted phrase"` or a chunk with punctuation (`db-2`) must appear as consecutive
    /// words. With `match=substring`, text the message contains. A search covers the last
    /// 24 hours unless `since` says otherwise.
    pub q: Option<String>,
    /// How `q` matches: `words` (default, served by the search index) or `substring`
    /// (case-insensitive, scanned: a page reads for at most `query.search_budget`, then
    /// answers with what it found and a `next_cursor`).
    #[serde(rename = "match")]
    #[param(pattern = "^(words|substring)$")]
    pub match_mode: Option<String>,
    /// Page size, 1 to `query.max_limit` (default 50, at most 500 unless configured).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = super::cursor_schema)]
    pub cursor: Option<String>,
}

/// Logs, newest first, keyset-paged on (ts, id).
#[utoipa::path(
    get,
    path = "/api/v1/logs",
    tag = "logs",
    params(
        LogParams,
        ("attr.{key}" = Option<String>, Query, description = "Attribute filter: events whose top-level attribute `key` has exactly this value (a number or boolean as its JSON text), e.g. `attr.host=web-3`. Repeatable for different keys (all must hold); served by the search index."),
    ),
    responses(
        (status = 200, description = "A page of logs. A search page may hold fewer rows than `limit` (even none) and still have a `next_cursor`: its time budget ran out first; follow the cursor to read on.", body = Page<LogView>),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or too many searches are running (`query.max_concurrent_searches`); retry after `Retry-After` seconds", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _caller: ReadAccess,
    state: Data<QueryState>,
    request: HttpRequest,
) -> Result<Json<Page<LogView>>, ApiError> {
    let (params, attributes) = parse_params(request.query_string())?;
    let mut filter = LogFilter {
        service: super::text_param(params.service.as_ref()),
        min_level: parse_name::<Level>("level", params.level.as_deref())?.map(Level::as_i16),
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
        ..LogFilter::default()
    };
    let text = super::text_param(params.q.as_ref()).filter(|text| !text.trim().is_empty());
    let (search, substring) = match params.match_mode.as_deref() {
        None | Some("words") => (Search::parse(text.as_deref(), attributes), None),
        Some("substring") => (Search::parse(None, attributes), text),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "match {other:?} is not words or substring"
            )));
        }
    };
    let search = search.map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Logs, params.cursor.as_deref())?;
    if search.is_empty() && substring.is_none() {
        let mut conn = state.read_connection().await?;
        let rows = store::logs::page(&mut conn, &filter, after, limit + 1).await?;
        return Ok(Json(into_page(rows, limit, CursorKind::Logs, |row| {
            (row.ts, row.id)
        })));
    }
    filter.since = Some(
        filter
            .since
            .unwrap_or_else(|| Utc::now() - DEFAULT_SEARCH_RANGE),
    );
    filter.terms = search.terms();
    filter.text = substring;
    // A search page may read for `search_budget`: at most `max_concurrent_searches` at once,
    // so searches leave connections to everything else.
    let busy = || ApiError::Unavailable {
        message: "too many log searches are running on this server; retry shortly".to_owned(),
        retry_after_secs: 1,
    };
    let _turn = tokio::time::timeout(state.search_budget, state.searches.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let mut conn = state.read_connection().await?;
    let found = store::logs::search(
        &mut conn,
        &filter,
        &search,
        after,
        usize::try_from(limit).unwrap_or(usize::MAX),
        state.search_budget,
    )
    .await?;
    Ok(Json(Page {
        data: found.rows.into_iter().map(LogView::from).collect(),
        next_cursor: found
            .next
            .map(|(at, id)| cursor::encode(CursorKind::Logs, at, id)),
    }))
}

/// The query string's named parameters, and its `attr.<key>=<value>` filters (which a
/// struct cannot name, so they are taken out before the rest is read).
fn parse_params(query: &str) -> Result<(LogParams, Vec<(String, String)>), ApiError> {
    let invalid = |error: &dyn std::fmt::Display| {
        ApiError::BadRequest(format!("invalid query string: {error}"))
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|error| invalid(&error))?;
    let (attributes, named): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(key, _)| key.starts_with(ATTRIBUTE_PREFIX));
    let attributes = attributes
        .into_iter()
        .map(|(key, value)| {
            let key = key[ATTRIBUTE_PREFIX.len()..].to_owned();
            (domain::strip_nul(key), domain::strip_nul(value))
        })
        .collect();
    let named = serde_urlencoded::to_string(named).map_err(|error| invalid(&error))?;
    let params = serde_urlencoded::from_str(&named).map_err(|error| invalid(&error))?;
    Ok((params, attributes))
}

#[cfg(test)]
mod tests {
    use super::parse_params;

    #[test]
    fn attribute_filters_are_taken_out_of_the_query_string() {
        let (params, attributes) =
            parse_params("q=card%20declined&attr.host=web-3&attr.http.status_code=500&limit=5")
                .unwrap();
        assert_eq!(params.q.as_deref(), Some("card declined"));
        assert_eq!(params.limit, Some(5));
        assert_eq!(
            attributes,
            [
                ("host".to_owned(), "web-3".to_owned()),
                ("http.status_code".to_owned(), "500".to_owned())
            ]
        );
    }

    #[test]
    fn unknown_parameters_are_still_refused() {
        let error = parse_params("q=x&colour=blue").unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");
        assert!(parse_params("limit=ten").is_err());
    }
}
