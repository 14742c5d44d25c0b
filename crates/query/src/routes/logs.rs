//! `/api/v1/logs`

use access::ReadAccess;
use actix_web::web::{Data, Json, Query};
use domain::Level;
use serde::Deserialize;
use store::logs::LogFilter;
use utoipa::IntoParams;
use web::ApiError;
use web::error::ErrorBody;

use super::{QueryState, into_page, parse_cursor, parse_name, parse_time};
use crate::api::{LogView, Page};
use crate::cursor::CursorKind;

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
    /// Case-insensitive text the message contains.
    pub q: Option<String>,
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
    params(LogParams),
    responses(
        (status = 200, description = "A page of logs", body = Page<LogView>),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _caller: ReadAccess,
    state: Data<QueryState>,
    params: Query<LogParams>,
) -> Result<Json<Page<LogView>>, ApiError> {
    let filter = LogFilter {
        service: super::text_param(params.service.as_ref()),
        min_level: parse_name::<Level>("level", params.level.as_deref())?.map(Level::as_i16),
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
        text: super::text_param(params.q.as_ref()).filter(|text| !text.is_empty()),
    };
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Logs, params.cursor.as_deref())?;
    let mut conn = state.read_connection().await?;
    let rows = store::logs::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Logs, |row| {
        (row.ts, row.id)
    })))
}
