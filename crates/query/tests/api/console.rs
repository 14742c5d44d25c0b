//! The operator console: its pages, the session cookie, and the same-origin rule that
//! guards state changes made with it. (bench/console.py drives it in a real browser.)

use auth::Role;
use chrono::Utc;
use domain::Severity;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const PAGES: &[&str] = &[
    "/incidents",
    "/incidents/7",
    "/services",
    "/services/checkout",
    "/logs?q=timeout&level=error",
];

/// A client that neither follows redirects nor keeps cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `url` with the session cookie `cookie` (`name=value`), as a browser would.
async fn with_cookie(url: impl reqwest::IntoUrl, cookie: &str) -> reqwest::Response {
    browser()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

/// Signs in from the console's own origin; the `name=value` of the session cookie.
async fn sign_in(app: &TestApp, email: &str, password: &str) -> String {
    let response = browser()
        .post(format!("{}/api/v1/auth/session", app.address))
        .header(ORIGIN, &app.address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

async fn act(app: &TestApp, cookie: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = browser()
        .post(format!("{}{path}", app.address))
        .header(COOKIE, cookie)
        .json(&json!({"reason": "on it"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn pages_need_a_session_and_forbid_inline_script() {
    let app = spawn_app().await;
    for page in PAGES {
        let response = browser()
            .get(format!("{}{page}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{page}");
        let location = response.headers()[LOCATION].to_str().unwrap();
        assert!(
            location.starts_with("/sign-in?next=/"),
            "{page}: {location}"
        );
        // The whole path and query come back as one parameter.
        assert!(!location[8..].contains('&'), "{location}");
    }
    // Link checkers and probes ask with HEAD.
    let head = browser()
        .head(format!("{}/sign-in", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let root = browser().get(&app.address).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()[LOCATION], "/incidents");

    let sign_in = browser()
        .get(format!("{}/sign-in", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 200);
    let policy = sign_in.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(sign_in.headers()["x-frame-options"], "DENY");
    let html = sign_in.text().await.unwrap();
    // No inline script or style for the policy to refuse, and nothing from elsewhere.
    assert!(html.contains(r#"<script type="module" src="/console/app.js">"#));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let url = format!("{}/console/{file}", app.address);
        let response = browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.text().await.unwrap();
        // Only the SVG namespace names a URL; nothing is loaded from elsewhere.
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{file} loads nothing from elsewhere"
        );
        let again = browser()
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file} revalidates");
    }
    let script = browser()
        .get(format!("{}/console/app.js", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Text goes into the page as text: nothing a log line says can become markup.
    assert!(!script.contains("innerHTML") && !script.contains("eval("));
    let missing = browser()
        .get(format!("{}/console/../Cargo.toml", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_console_session_reads_acts_from_its_own_origin_only_and_signs_out() {
    let app = spawn_app().await;
    app.add_user(
        "oncall@example.com",
        "Pager-Duty-7f3k-Quokka",
        Role::Operator,
    )
    .await;
    let incident = app
        .incident("checkout", Utc::now(), Severity::Critical)
        .await;
    let session_url = format!("{}/api/v1/auth/session", app.address);
    let credentials = json!({"email": "oncall@example.com", "password": "Pager-Duty-7f3k-Quokka"});

    // Signing in is refused from another site (login CSRF) and without an origin.
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let mut request = browser().post(&session_url).json(&credentials);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{origin:?}");
        assert!(!response.headers().contains_key(SET_COOKIE));
    }
    let wrong = browser()
        .post(&session_url)
        .header(ORIGIN, &app.address)
        .json(&json!({"email": "oncall@example.com", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let response = browser()
        .post(&session_url)
        .header(ORIGIN, &app.address)
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    // Plain HTTP: not Secure (the browser would drop it); over TLS it is (below).
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "operator");
    assert_eq!(body["can_operate"], true);
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // Pages and reads with the cookie.
    for page in PAGES {
        let response = with_cookie(format!("{}{page}", app.address), &cookie).await;
        assert_eq!(response.status(), 200, "{page}");
    }
    // Signed in already, sign-in leads straight on, never off the site.
    for (next, expected) in [
        ("%2Fservices", "/services"),
        ("%2F%2Fevil.example", "/incidents"),
    ] {
        let response = with_cookie(format!("{}/sign-in?next={next}", app.address), &cookie).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()[LOCATION], expected);
    }
    let me: Value = with_cookie(&session_url, &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["subject"], "oncall@example.com");

    // Acting with the cookie: only from the console's own origin.
    let acknowledge = format!("/api/v1/incidents/{incident}/acknowledge");
    for headers in [
        vec![],
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        // A sibling port on the same host is another origin.
        vec![("Origin", "http://127.0.0.1:1")],
    ] {
        let (status, body) = act(&app, &cookie, &acknowledge, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("Bearer"),
            "{body}"
        );
    }
    // Another scheme for this host, and forwarding headers from a peer that is not a
    // trusted proxy (any client can send them), do not make another origin this one.
    let authority = app.address.trim_start_matches("http://").to_owned();
    for headers in [
        vec![("Origin", format!("evil://{authority}"))],
        vec![
            ("Origin", "http://evil.example".to_owned()),
            ("X-Forwarded-Host", "evil.example".to_owned()),
        ],
        vec![
            ("Origin", "http://evil.example".to_owned()),
            ("Forwarded", "host=evil.example".to_owned()),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, body) = act(&app, &cookie, &acknowledge, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
    }
    let (status, body) = act(&app, &cookie, &acknowledge, &[("Origin", &app.address)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acknowledged_by"], "oncall@example.com");
    // Without Origin, the browser's own Sec-Fetch-Site says same-origin.
    let resolve = format!("/api/v1/incidents/{incident}/resolve");
    let (status, _) = act(
        &app,
        &cookie,
        &resolve,
        &[("Sec-Fetch-Site", "same-origin")],
    )
    .await;
    assert_eq!(status, 200);
    // The bearer API is untouched by the rule: clients send no Origin.
    let (status, _) = app.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(status, 200);

    // Signing out from another site is refused; from the console it revokes the token.
    let delete = |origin: String| {
        browser()
            .delete(&session_url)
            .header(COOKIE, &cookie)
            .header(ORIGIN, origin)
            .send()
    };
    assert_eq!(
        delete("http://evil.example".to_owned())
            .await
            .unwrap()
            .status(),
        403
    );
    let out = delete(app.address.clone()).await.unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = with_cookie(&session_url, &cookie).await;
    assert_eq!(after.status(), 401);
    let page = with_cookie(format!("{}/incidents", app.address), &cookie).await;
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()[LOCATION],
        "/sign-in?next=/incidents&expired=1"
    );
}

#[tokio::test]
async fn viewers_cannot_act_expired_sessions_sign_in_again_and_tls_cookies_are_secure() {
    let app = spawn_app().await;
    app.add_user("viewer@example.com", "Read-Only-9x2m-Wombat", Role::Viewer)
        .await;
    let incident = app
        .incident("checkout", Utc::now(), Severity::Warning)
        .await;
    let cookie = sign_in(&app, "viewer@example.com", "Read-Only-9x2m-Wombat").await;
    let (status, body) = act(
        &app,
        &cookie,
        &format!("/api/v1/incidents/{incident}/acknowledge"),
        &[("Origin", &app.address)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("operator"));

    let expired = format!(
        "threesigma_session={}",
        auth::testing::expired_token("viewer@example.com")
    );
    let page = with_cookie(format!("{}/services", app.address), &expired).await;
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()[LOCATION],
        "/sign-in?next=/services&expired=1"
    );
    assert!(
        page.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let api = with_cookie(format!("{}/api/v1/incidents", app.address), &expired).await;
    assert_eq!(api.status(), 401);

    // Behind a TLS-terminating proxy the cookie is Secure.
    let response = browser()
        .post(format!("{}/api/v1/auth/session", app.address))
        .header(ORIGIN, &app.address)
        .header("X-Forwarded-Proto", "https")
        .json(&json!({"email": "viewer@example.com", "password": "Read-Only-9x2m-Wombat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let secure = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(secure.starts_with("__Host-threesigma_session="), "{secure}");
    assert!(secure.contains("; Secure"), "{secure}");
    // Over HTTPS only the __Host- cookie counts: a plain one (which a sibling subdomain
    // could have planted) is not a session there.
    let token = secure.split(';').next().unwrap().split_once('=').unwrap().1;
    for (name, expected) in [
        ("__Host-threesigma_session", 200),
        ("threesigma_session", 401),
    ] {
        let response = browser()
            .get(format!("{}/api/v1/auth/session", app.address))
            .header("X-Forwarded-Proto", "https")
            .header(COOKIE, format!("{name}={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{name}");
    }
}

#[tokio::test]
async fn a_bad_bearer_token_is_not_rescued_by_a_session_cookie() {
    // Authorization wins over the cookie: a client's credential is never replaced.
    let app = spawn_app().await;
    app.add_user("viewer@example.com", "Read-Only-9x2m-Wombat", Role::Viewer)
        .await;
    let cookie = sign_in(&app, "viewer@example.com", "Read-Only-9x2m-Wombat").await;
    let response = browser()
        .get(format!("{}/api/v1/incidents", app.address))
        .header(COOKIE, &cookie)
        .header("Authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
