//! `/api/v1/incidents...`

use actix_web::web::{Data, Json, Path, Query};
use domain::{Severity, Status};
use serde::Deserialize;
use store::incidents::IncidentFilter;
use store::logs::LogFilter;
use web::ApiError;

use super::{QueryState, into_page, parse_cursor, parse_name, parse_time};
use crate::api::{IncidentDetail, IncidentView, LogView, Page};
use crate::cursor::CursorKind;

/// Filters and paging of `GET /api/v1/incidents`.
#[derive(Debug, Deserialize)]
pub struct IncidentParams {
    pub status: Option<String>,
    pub service: Option<String>,
    pub severity: Option<String>,
    /// Opened at or after (RFC 3339).
    pub since: Option<String>,
    /// Opened before (RFC 3339).
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /api/v1/incidents`: newest first, keyset-paged.
pub async fn list(
    state: Data<QueryState>,
    params: Query<IncidentParams>,
) -> Result<Json<Page<IncidentView>>, ApiError> {
    let filter = IncidentFilter {
        status: parse_name::<Status>("status", params.status.as_deref())?,
        service: params.service.clone(),
        severity: parse_name::<Severity>("severity", params.severity.as_deref())?,
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
    };
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Incidents, params.cursor.as_deref())?;
    let mut conn = state.connection().await?;
    let rows = store::incidents::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Incidents, |row| {
        (row.opened_at, row.id)
    })))
}

async fn find(state: &QueryState, id: i64) -> Result<store::models::IncidentRow, ApiError> {
    let mut conn = state.connection().await?;
    store::incidents::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("incident {id} does not exist")))
}

/// `GET /api/v1/incidents/{id}`: the incident with its baseline and timeline.
pub async fn detail(
    state: Data<QueryState>,
    id: Path<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let id = id.into_inner();
    let incident = find(&state, id).await?;
    let mut conn = state.connection().await?;
    let timeline = store::incidents::timeline(&mut conn, id).await?;
    Ok(Json(IncidentDetail {
        incident: incident.into(),
        timeline: timeline.into_iter().map(Into::into).collect(),
    }))
}

/// Paging of `GET /api/v1/incidents/{id}/logs`.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /api/v1/incidents/{id}/logs`: the service's ERROR-and-above logs from the first
/// minute that fired until the resolution (or now), newest first.
pub async fn logs(
    state: Data<QueryState>,
    id: Path<i64>,
    params: Query<PageParams>,
) -> Result<Json<Page<LogView>>, ApiError> {
    let incident = find(&state, id.into_inner()).await?;
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Logs, params.cursor.as_deref())?;
    let filter = LogFilter {
        service: Some(incident.service),
        min_level: Some(domain::Level::Error.as_i16()),
        since: Some(incident.first_minute),
        until: incident.resolved_at,
        text: None,
    };
    let mut conn = state.connection().await?;
    let rows = store::logs::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Logs, |row| {
        (row.ts, row.id)
    })))
}
