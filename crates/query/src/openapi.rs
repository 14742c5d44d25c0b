//! The OpenAPI 3 description of the query API, generated from the handlers and types
//! (utoipa), served at `/api/v1/openapi.json` with Swagger UI at `/api/v1/docs/`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};

use crate::routes::{incidents, login, logs, services, session};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "threesigma query API",
        description = "Incidents detected from per-service error rates, and the logs behind them. \
                       Lists are keyset-paged: pass `next_cursor` back as `cursor`. Every endpoint \
                       but login needs `Authorization: Bearer <token>` (the browser console sends \
                       its session cookie instead, from `POST /api/v1/auth/session`)."
    ),
    paths(
        login::login,
        session::create,
        session::show,
        session::delete,
        incidents::list,
        incidents::detail,
        incidents::logs,
        incidents::acknowledge,
        incidents::resolve,
        logs::list,
        services::list,
        services::series,
        services::patterns,
    ),
    modifiers(&BearerAuth, &CommonResponses),
    tags(
        (name = "auth", description = "Sessions"),
        (name = "incidents", description = "Incidents and operator actions"),
        (name = "logs", description = "Stored logs"),
        (name = "services", description = "Services and their recent error counts"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as served: `limit` parameters carry the configured `query.max_limit`.
pub fn document(max_limit: i64) -> utoipa::openapi::OpenApi {
    let mut openapi = ApiDoc::openapi();
    let maximum = isize::try_from(max_limit).unwrap_or(isize::MAX);
    for operation in operations(&mut openapi) {
        let parameters = operation.parameters.iter_mut().flatten();
        for parameter in parameters {
            let RefOr::T(parameter) = parameter else {
                continue;
            };
            if parameter.name == "limit"
                && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
            {
                schema.maximum = Some(utoipa::Number::Int(maximum));
            }
        }
    }
    openapi
}

fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.delete]
            .into_iter()
            .filter_map(Option::as_mut)
    })
}

/// Responses every operation can give, documented once: authentication and rate limiting
/// on secured operations, bad input, oversize bodies, and an unreachable
/// database. An operation's own description of a code wins.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            let secured = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let has_body = operation.request_body.is_some();
            let mut common = vec![
                ("400", "Bad parameter or body; `error` says which and why"),
                ("429", "Rate limited; retry after `Retry-After` seconds"),
                (
                    "503",
                    "Database unavailable; retry after `Retry-After` seconds",
                ),
            ];
            if secured {
                common.push(("401", "Missing, malformed, expired or revoked token"));
                common.push(("403", "The token lacks the scope or role this needs"));
            }
            if has_body {
                common.push(("413", "Body larger than `query.max_body_bytes`"));
            }
            for (status, description) in common {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}
