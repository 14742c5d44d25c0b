//! The OpenAPI document and the docs page.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_with(&reqwest::Client::new(), "/api/v1/openapi.json")
        .await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/logs",
        "/api/v1/incidents/{id}/acknowledge",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/logs",
        "/api/v1/services",
        "/api/v1/services/{name}/series",
        "/api/v1/auth/session",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    // Parameters say what the server accepts, and every failure code is documented.
    let list = &document["paths"]["/api/v1/incidents"]["get"];
    let parameter = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(
        parameter("status")["enum"],
        json!(["open", "acknowledged", "resolved", "active"])
    );
    assert_eq!(parameter("limit")["minimum"], 1);
    assert_eq!(parameter("limit")["maximum"], 500);
    assert_eq!(parameter("since")["anyOf"][0]["format"], "date-time");
    assert_eq!(parameter("since")["anyOf"][1]["type"], "number");
    for code in ["200", "400", "401", "403", "429", "503"] {
        assert!(
            list["responses"][code].is_object(),
            "GET incidents documents {code}"
        );
    }
    let resolve = &document["paths"]["/api/v1/incidents/{id}/resolve"]["post"];
    for code in ["404", "409", "413"] {
        assert!(
            resolve["responses"][code].is_object(),
            "resolve documents {code}"
        );
    }
    let (status, page) = app.get_with(&reqwest::Client::new(), "/api/v1/docs/").await;
    assert_eq!(status, 200);
    assert!(page.contains("swagger"), "{page}");
}
