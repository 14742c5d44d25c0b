//! The OpenAPI 3 description of the query API, generated from the handlers and types
//! (utoipa), served at `/api/v1/openapi.json` with Swagger UI at `/api/v1/docs/`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{auth, incidents, logs, services};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "threesigma query API",
        description = "Incidents detected from per-service error rates, and the logs behind them. \
                       Lists are keyset-paged: pass `next_cursor` back as `cursor`. Every endpoint \
                       but login needs `Authorization: Bearer <token>`."
    ),
    paths(
        auth::login,
        incidents::list,
        incidents::detail,
        incidents::logs,
        incidents::acknowledge,
        incidents::resolve,
        logs::list,
        services::list,
    ),
    modifiers(&BearerAuth),
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
