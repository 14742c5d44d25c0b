//! `/api/v1/auth/session`: the browser console's session, a short-lived token in an
//! HttpOnly, SameSite=Strict cookie (see `access::session`). API clients keep using
//! `POST /api/v1/auth/login` and `Authorization: Bearer`.

use access::ReadAccess;
use access::session::{self, ViaCookie};
use actix_web::web::{Data, Json, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use web::ApiError;
use web::error::{ErrorBody, NoParams};

use super::QueryState;
use super::login::{LoginRequest, sign_in};

/// The signed-in user, as the console shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The user's email (the token's subject).
    pub subject: String,
    /// `admin`, `operator` or `viewer`; `null` for a token issued without a role.
    pub role: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Whether this user may acknowledge and resolve incidents.
    pub can_operate: bool,
}

/// Signs in to the console: checks the email and password as `login` does and answers
/// with the session cookie (HttpOnly, SameSite=Strict, Secure over TLS) holding a token
/// that lives `auth.console_session_ttl` (1 hour by default). Only from the console's own
/// origin: a sign-in posted from another site is refused.
#[utoipa::path(
    post,
    path = "/api/v1/auth/session",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = SessionView),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "Not from the console's own origin", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    )
)]
pub async fn create(
    request: HttpRequest,
    state: Data<QueryState>,
    body: Json<LoginRequest>,
    _params: Query<NoParams>,
) -> Result<HttpResponse, ApiError> {
    session::same_origin(&request).map_err(ApiError::Forbidden)?;
    let signed_in = sign_in(&state, body.into_inner(), state.console_session_ttl).await?;
    let view = SessionView {
        subject: signed_in.email,
        role: Some(signed_in.role.as_str().to_owned()),
        expires_at: signed_in.token.expires_at,
        can_operate: matches!(signed_in.role, auth::Role::Admin | auth::Role::Operator),
    };
    Ok(HttpResponse::Ok()
        .cookie(session::session_cookie(
            &request,
            signed_in.token.token,
            state.console_session_ttl,
        ))
        .json(view))
}

/// Who is signed in (the session cookie's user, or the bearer token's subject).
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = SessionView),
        (status = 401, description = "No session, or it expired", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(caller: ReadAccess, _params: Query<NoParams>) -> Json<SessionView> {
    let principal = caller.0;
    Json(SessionView {
        can_operate: principal.can_operate(),
        role: principal.role.map(|role| role.as_str().to_owned()),
        subject: principal.subject,
        expires_at: principal.expires_at,
    })
}

/// Signs out of the console: revokes the session's token (everywhere within
/// `auth.revocation_refresh`, here at once) and clears the cookie. Answers 204 also when
/// there is no session or it has expired; refuses a sign-out from another origin.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/session",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "Not from the console's own origin", body = ErrorBody),
    )
)]
pub async fn delete(
    request: HttpRequest,
    state: Data<QueryState>,
    verifier: Data<auth::TokenVerifier>,
    _params: Query<NoParams>,
) -> Result<HttpResponse, ApiError> {
    let via_cookie = request.extensions().get::<ViaCookie>().is_some();
    if via_cookie {
        session::cookie_may_act(&request).map_err(ApiError::Forbidden)?;
        if let Ok(principal) = access::authn::principal(&request) {
            let mut conn = state.connection().await?;
            store::users::revoke_token(
                &mut conn,
                &principal.jti,
                principal.expires_at,
                "signed out of the console",
            )
            .await?;
            verifier.revoke(&principal.jti);
            tracing::info!(subject = %principal.subject, "User signed out.");
        }
    }
    Ok(HttpResponse::NoContent()
        .cookie(session::cleared_cookie(&request))
        .finish())
}
