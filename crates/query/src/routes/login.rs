//! `POST /api/v1/auth/login`

use actix_web::web::{Data, Json, Query};
use auth::{Role, password};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use web::ApiError;
use web::error::NoParams;

use super::QueryState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A session token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub role: String,
}

/// Exchanges an email and password for a token (argon2id check; the answer to a wrong
/// password and to an unknown email is the same, and takes as long).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = web::error::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = web::error::ErrorBody),
        (status = 429, description = "Too many attempts", body = web::error::ErrorBody),
        (status = 503, description = "This service cannot sign tokens (key pair without private key)", body = web::error::ErrorBody),
    )
)]
pub async fn login(
    state: Data<QueryState>,
    body: Json<LoginRequest>,
    _params: Query<NoParams>,
) -> Result<Json<LoginResponse>, ApiError> {
    let session = sign_in(&state, body.into_inner(), state.session_ttl).await?;
    Ok(Json(LoginResponse {
        token: session.token.token,
        expires_at: session.token.expires_at,
        role: session.role.as_str().to_owned(),
    }))
}

/// A user signed in: their token and role.
pub struct SignedIn {
    pub email: String,
    pub role: Role,
    pub token: auth::IssuedToken,
}

/// Checks an email and password (argon2id; a wrong password and an unknown email get the
/// same answer after the same work) and issues a token for `ttl`.
pub async fn sign_in(
    state: &QueryState,
    LoginRequest { email, password }: LoginRequest,
    ttl: std::time::Duration,
) -> Result<SignedIn, ApiError> {
    let Some(signer) = state.signer.clone() else {
        return Err(ApiError::unavailable(
            "login is disabled: this service holds no signing key; issue tokens with `threesigma token issue`",
            60,
        ));
    };
    let mut conn = state.connection().await?;
    let credentials = store::users::credentials(&mut conn, domain::strip_nul(email).trim()).await?;
    drop(conn);
    let (hash, user) = match credentials {
        Some(user) => (user.password_hash.clone(), Some(user)),
        None => (password::decoy().to_owned(), None),
    };
    // argon2 takes tens of milliseconds of CPU: off the HTTP worker.
    let matches = actix_web::web::block(move || password::verify(&password, &hash))
        .await
        .map_err(|error| ApiError::Internal(format!("password check failed: {error}")))?;
    let (Some(user), true) = (user, matches) else {
        return Err(ApiError::Unauthorized("wrong email or password".to_owned()));
    };
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::Internal(format!("user {} has unknown role {}", user.id, user.role))
    })?;
    let token = signer
        .issue(&user.email, role.scopes(), Some(role), ttl)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    tracing::info!(user = user.id, "User logged in.");
    Ok(SignedIn {
        email: user.email,
        role,
        token,
    })
}
