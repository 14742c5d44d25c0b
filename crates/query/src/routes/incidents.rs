//! `/api/v1/incidents...`

use access::{OperatorAccess, ReadAccess};
use actix_web::web::{Bytes, Data, Json, Path, Query};
use chrono::Utc;
use domain::{Severity, Signal, Status};
use serde::Deserialize;
use store::incidents::{Actor, IncidentFilter, StatusFilter};
use store::logs::LogFilter;
use utoipa::{IntoParams, ToSchema};
use web::ApiError;
use web::error::{ErrorBody, NoParams};

use super::{QueryState, into_page, parse_cursor, parse_name, parse_time};
use crate::api::{ExplanationView, IncidentDetail, IncidentView, LogView, Page};
use crate::cursor::CursorKind;

/// Filters and paging of `GET /api/v1/incidents`. A parameter not listed here is a 400
/// naming it: a misspelt filter must not silently return everything.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// A status, or `active` for open and acknowledged ones.
    #[param(schema_with = super::status_schema)]
    pub status: Option<String>,
    pub service: Option<String>,
    #[param(schema_with = super::signal_schema)]
    pub signal: Option<String>,
    #[param(schema_with = super::severity_schema)]
    pub severity: Option<String>,
    /// Opened at or after (RFC 3339, or epoch seconds).
    #[param(schema_with = super::time_schema)]
    pub since: Option<String>,
    /// Opened before (RFC 3339, or epoch seconds).
    #[param(schema_with = super::time_schema)]
    pub until: Option<String>,
    /// Page size, 1 to `query.max_limit` (default 50, at most 500 unless configured).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = super::cursor_schema)]
    pub cursor: Option<String>,
}

/// Incidents, newest first, keyset-paged (page 10,000 costs what page 1 costs).
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(IncidentParams),
    responses(
        (status = 200, description = "A page of incidents", body = Page<IncidentView>),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Token lacks the read scope", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _caller: ReadAccess,
    state: Data<QueryState>,
    params: Query<IncidentParams>,
) -> Result<Json<Page<IncidentView>>, ApiError> {
    let filter = IncidentFilter {
        status: match params.status.as_deref() {
            Some("active") => Some(StatusFilter::Active),
            other => parse_name::<Status>("status", other)?.map(StatusFilter::Is),
        },
        service: super::text_param(params.service.as_ref()),
        signal: parse_name::<Signal>("signal", params.signal.as_deref())?,
        severity: parse_name::<Severity>("severity", params.severity.as_deref())?,
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
    };
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Incidents, params.cursor.as_deref())?;
    let mut conn = state.read_connection().await?;
    let rows = store::incidents::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Incidents, |row| {
        (row.opened_at, row.id)
    })))
}

async fn find(
    conn: &mut store::PooledConnection,
    id: i64,
) -> Result<store::models::IncidentRow, ApiError> {
    store::incidents::find(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("incident {id} does not exist")))
}

async fn detail_of(
    conn: &mut store::PooledConnection,
    id: i64,
) -> Result<IncidentDetail, ApiError> {
    let incident = find(conn, id).await?;
    let timeline = store::incidents::timeline(conn, id).await?;
    let explanation = store::explanations::latest(conn, id).await?;
    Ok(IncidentDetail {
        incident: incident.into(),
        timeline: timeline.into_iter().map(Into::into).collect(),
        explanation: explanation.as_ref().and_then(ExplanationView::of),
    })
}

/// One incident with its baseline, thresholds, timeline and explanation (the message
/// templates and attribute values that changed).
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail),
        (status = 404, description = "No such incident", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn detail(
    _caller: ReadAccess,
    state: Data<QueryState>,
    id: Path<i64>,
    _params: Query<NoParams>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let mut conn = state.read_connection().await?;
    Ok(Json(detail_of(&mut conn, id.into_inner()).await?))
}

/// Paging of `GET /api/v1/incidents/{id}/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1 to `query.max_limit` (default 50, at most 500 unless configured).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = super::cursor_schema)]
    pub cursor: Option<String>,
}

/// The service's ERROR-and-above logs from the first minute that fired until the resolution
/// (or now), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/logs",
    tag = "incidents",
    params(("id" = i64, Path, description = "Incident id"), PageParams),
    responses(
        (status = 200, description = "A page of logs", body = Page<LogView>),
        (status = 404, description = "No such incident", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn logs(
    _caller: ReadAccess,
    state: Data<QueryState>,
    id: Path<i64>,
    params: Query<PageParams>,
) -> Result<Json<Page<LogView>>, ApiError> {
    let limit = state.limit(params.limit)?;
    let after = parse_cursor(CursorKind::Logs, params.cursor.as_deref())?;
    let mut conn = state.read_connection().await?;
    let incident = find(&mut conn, id.into_inner()).await?;
    let filter = LogFilter {
        service: Some(incident.service),
        min_level: Some(domain::Level::Error.as_i16()),
        since: Some(incident.first_minute),
        until: incident.resolved_at,
        ..LogFilter::default()
    };
    let rows = store::logs::page(&mut conn, &filter, after, limit + 1).await?;
    Ok(Json(into_page(rows, limit, CursorKind::Logs, |row| {
        (row.ts, row.id)
    })))
}

/// The optional body of an operator action.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionRequest {
    /// Why, recorded in the timeline.
    #[serde(default)]
    pub reason: String,
}

fn action_body(body: &Bytes) -> Result<ActionRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionRequest::default());
    }
    let invalid =
        |error: serde_json::Error| ApiError::BadRequest(format!("invalid JSON body: {error}"));
    // An object, as documented: serde would also read a struct from an array (`[]`).
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object such as {\"reason\": \"...\"}".to_owned(),
        ));
    }
    let request: ActionRequest = serde_json::from_value(value).map_err(invalid)?;
    Ok(ActionRequest {
        reason: domain::strip_nul(request.reason),
    })
}

/// Acknowledges an open incident (operator or admin): it stays active and keeps being
/// updated, and the acknowledgement is recorded with who did it.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/acknowledge",
    tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = ActionRequest, description = "Optional reason", content_type = "application/json"),
    responses(
        (status = 200, description = "Acknowledged", body = IncidentDetail),
        (status = 403, description = "Needs the operator or admin role", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not open (already acknowledged or resolved)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn acknowledge(
    caller: OperatorAccess,
    state: Data<QueryState>,
    id: Path<i64>,
    _params: Query<NoParams>,
    body: Bytes,
) -> Result<Json<IncidentDetail>, ApiError> {
    act(caller, state, id.into_inner(), &body, Action::Acknowledge).await
}

/// Resolves an active incident by hand (operator or admin), recorded with who did it. If
/// its errors fire again within the reopen window, the detector reopens it.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/resolve",
    tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = ActionRequest, description = "Optional reason", content_type = "application/json"),
    responses(
        (status = 200, description = "Resolved", body = IncidentDetail),
        (status = 403, description = "Needs the operator or admin role", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    caller: OperatorAccess,
    state: Data<QueryState>,
    id: Path<i64>,
    _params: Query<NoParams>,
    body: Bytes,
) -> Result<Json<IncidentDetail>, ApiError> {
    act(caller, state, id.into_inner(), &body, Action::Resolve).await
}

/// An operator action on an incident.
#[derive(Debug, Clone, Copy)]
enum Action {
    Acknowledge,
    Resolve,
}

/// Performs `action` as the caller (recorded in the timeline with the body's reason) and
/// answers the incident as it is now; 404 for no such incident, 409 when the incident is
/// not in a state the action applies to.
async fn act(
    caller: OperatorAccess,
    state: Data<QueryState>,
    id: i64,
    body: &Bytes,
    action: Action,
) -> Result<Json<IncidentDetail>, ApiError> {
    let request = action_body(body)?;
    let mut conn = state.connection().await?;
    let actor = Actor {
        name: &caller.0.subject,
        reason: &request.reason,
    };
    let now = Utc::now();
    let done = match action {
        Action::Acknowledge => store::incidents::acknowledge(&mut conn, id, now, actor).await?,
        Action::Resolve => store::incidents::resolve(&mut conn, id, now, actor).await?,
    };
    if !done {
        let incident = find(&mut conn, id).await?;
        return Err(ApiError::Conflict(match action {
            Action::Acknowledge => format!("incident {id} is {}, not open", incident.status),
            Action::Resolve => format!("incident {id} is already resolved"),
        }));
    }
    Ok(Json(detail_of(&mut conn, id).await?))
}
