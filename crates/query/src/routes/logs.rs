//! `/api/v1/logs`

use actix_web::web::{Data, Json, Query};
use domain::Level;
use serde::Deserialize;
use store::logs::LogFilter;
use utoipa::IntoParams;
use web::ApiError;
use web::auth::ReadAccess;
use web::error::ErrorBody;

use super::{QueryState, into_page, parse_cursor, parse_name, parse_time};
use crate::api::{LogView, Page};
use crate::cursor::CursorKind;

/// Filters and paging of `GET /api/v1/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    pub service: Option<String>,
    /// Lowest level to include (`error` means error and fatal).
    pub level: Option<String>,
    /// Event time at or after (RFC 3339 or epoch seconds).
    pub since: Option<String>,
    /// Event time before (RFC 3339 or epoch seconds).
    pub until: Option<String>,
    /// Case-insensitive text the message contains.
    pub q: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
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
        service: params.service.clone(),
        min_level: parse_name::<Level>("level", params.level.as_deref())?.map(Level::as_i16),
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
        text: params.q.clone().filter(|text| !text.is_empty()),
    };
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Logs, params.cursor.as_deref())?;
    let mut conn = state.read_connection().await?;
    let rows = store::logs::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Logs, |row| {
        (row.ts, row.id)
    })))
}
