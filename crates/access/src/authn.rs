//! Authentication as actix middleware and extractors. The middleware [`authenticate`] only
//! *records* who is calling; the extractors ([`IngestAccess`], [`ReadAccess`],
//! [`OperatorAccess`]) refuse, so rate limiting can key on the caller before anything is
//! refused.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use auth::{AuthError, Principal, Scope, TokenVerifier};
use web::ApiError;

/// The outcome of authentication, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authentication(pub Result<Principal, AuthError>);

/// The HTTP answer to an authentication failure: 403 for a known caller without the right,
/// 401 otherwise.
pub fn refusal(error: AuthError) -> ApiError {
    if error.is_forbidden() {
        ApiError::Forbidden(error.to_string())
    } else {
        ApiError::Unauthorized(error.to_string())
    }
}

const EXPECTED: &str =
    "expected Bearer <token>, Basic with the token as password, or ApiKey <token>";

/// The token a request carries in `Authorization`, in any of the schemes shippers can send:
/// `Bearer <token>`; `Basic base64(user:token)` (any user name; a token sent as the user
/// name with an empty password is taken too), for clients that only speak basic auth
/// (python-logging-loki, rsyslog, Promtail); `ApiKey <token>` or Elasticsearch's
/// `ApiKey base64(id:token)` (any id), for Elasticsearch clients (Filebeat, Logstash).
fn credential(request: &ServiceRequest) -> Result<String, AuthError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    let Some(header) = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
    else {
        return Err(AuthError::Missing);
    };
    let value = header
        .to_str()
        .map_err(|_| AuthError::Malformed("not valid text".to_owned()))?;
    let malformed = || AuthError::Malformed(EXPECTED.to_owned());
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(malformed());
    }
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                AuthError::Malformed("Basic credentials are not base64 of user:password".to_owned())
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            AuthError::Malformed("Basic credentials are not base64 of user:password".to_owned())
        })?;
        if password.is_empty() { user } else { password }.to_owned()
    } else if scheme.eq_ignore_ascii_case("apikey") {
        // Elasticsearch clients send base64(id:key); a JWT is never valid standard base64
        // (it holds dots), so a token sent as it is is not mistaken for one.
        match STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        {
            Some(decoded) => match decoded.split_once(':') {
                Some((_, key)) => key.to_owned(),
                None => decoded,
            },
            None => rest.to_owned(),
        }
    } else {
        return Err(malformed());
    };
    if token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(token.trim().to_owned())
}

/// Middleware: verifies the token (needs a [`TokenVerifier`] as app data) and records
/// the outcome for the rate limiter and the access extractors.
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // `Authorization` first; without one, the console's session cookie where accepted.
    let (token, via_cookie) = match credential(&request) {
        Err(AuthError::Missing) => match crate::session::cookie_token(request.request()) {
            Some(token) => (Ok(token), true),
            None => (Err(AuthError::Missing), false),
        },
        other => (other, false),
    };
    let mut outcome = match request.app_data::<actix_web::web::Data<TokenVerifier>>() {
        Some(verifier) => token.and_then(|token| verifier.verify(&token)),
        None => Err(AuthError::Invalid(
            "this service has no token verifier".to_owned(),
        )),
    };
    if via_cookie {
        if outcome.is_ok()
            && let Err(reason) = crate::session::cookie_may_act(request.request())
        {
            outcome = Err(AuthError::Forbidden(reason));
        }
        request.extensions_mut().insert(crate::session::ViaCookie);
    }
    request.extensions_mut().insert(Authentication(outcome));
    next.call(request).await
}

/// Who the authentication middleware found calling (or why no one).
pub fn principal(request: &HttpRequest) -> Result<Principal, AuthError> {
    match request.extensions().get::<Authentication>() {
        Some(Authentication(outcome)) => outcome.clone(),
        None => Err(AuthError::Missing),
    }
}

/// Defines an extractor that demands what `check` demands of the caller.
macro_rules! access {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                let check: fn(Principal) -> Result<Principal, AuthError> = $check;
                ready(principal(request).and_then(check).map($name).map_err(refusal))
            }
        }
    };
}

access!(
    /// A caller allowed to send logs (`ingest` scope).
    IngestAccess,
    |principal| principal.require(Scope::Ingest)
);
access!(
    /// A caller allowed to read (`read` scope).
    ReadAccess,
    |principal| principal.require(Scope::Read)
);
access!(
    /// A caller allowed to acknowledge and resolve incidents (`read` scope and the operator
    /// or admin role, or the admin scope).
    OperatorAccess,
    Principal::require_operator
);
