//! `threesigma up` and `threesigma demo`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::stack::{Stack, StackOptions};
use crate::traffic;
use crate::{access, postgres};
use auth::{Role, Scope};

/// Options shared by `up` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// PostgreSQL URL; without it, the local server on 127.0.0.1:5432, else a private
    /// cluster under --pg-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// TOML settings file shared by the three services.
    #[arg(long, env = "THREESIGMA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub ingest_bind: String,
    #[arg(long, default_value = "127.0.0.1:8081", value_name = "HOST:PORT")]
    pub query_bind: String,
    #[arg(long, default_value = "127.0.0.1:8082", value_name = "HOST:PORT")]
    pub detector_bind: String,
    /// Where a private PostgreSQL cluster lives, if one is needed.
    #[arg(long, default_value = ".threesigma/pg", value_name = "DIR")]
    pub pg_dir: PathBuf,
    /// Port of the private cluster.
    #[arg(long, default_value_t = 54329)]
    pub pg_port: u16,
}

struct Running {
    database: postgres::Database,
    ingest: String,
    query: String,
    /// A token for sending logs.
    ingest_token: String,
    /// A token for reading.
    read_token: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The JWT secret: `JWT_SECRET`/`JWT_SECRET_FILE`, else a development secret made up for
/// this run (tokens die with the process).
fn secret() -> anyhow::Result<(String, bool)> {
    Ok(match auth::secret_from_env()? {
        Some(secret) => (secret, false),
        None => (access::random_secret(48), true),
    })
}

/// Creates an admin user on a database without users; returns its email and password.
async fn first_admin(database_url: &str) -> anyhow::Result<Option<(String, String)>> {
    let mut conn = store::pool::connect(database_url).await?;
    if store::users::count(&mut conn).await? > 0 {
        return Ok(None);
    }
    let email = "admin@localhost".to_owned();
    let password = access::random_secret(20);
    access::add_user(database_url, &email, Role::Admin, Some(password.clone())).await?;
    Ok(Some((email, password)))
}

async fn start(args: &UpArgs, detector_interval: Option<Duration>) -> anyhow::Result<Running> {
    let database = postgres::resolve(args.database_url.clone(), &args.pg_dir, args.pg_port).await?;
    let (jwt_secret, generated) = secret()?;
    let options = StackOptions {
        database_url: database.url.clone(),
        config: args.config.clone(),
        ingest_bind: args.ingest_bind.clone(),
        query_bind: args.query_bind.clone(),
        detector_bind: args.detector_bind.clone(),
        detector_interval,
        jwt_secret: Some(jwt_secret.clone()),
    };
    let stack = Stack::build(&options).await?;
    let mut auth = access::auth_settings(args.config.clone())?;
    auth.secret = jwt_secret.into();
    let day = Duration::from_secs(86_400);
    let ingest_token =
        access::issue_token(&auth, "local-shipper", &[Scope::Ingest], day * 90)?.token;
    let read_token = access::issue_token(&auth, "local-reader", &[Scope::Read], day)?.token;
    let admin = first_admin(&database.url).await?;
    let host = |bind: &str, port: u16| {
        let host = bind.rsplit_once(':').map_or("127.0.0.1", |(host, _)| host);
        let host = if host == "0.0.0.0" || host.is_empty() {
            "127.0.0.1"
        } else {
            host
        };
        format!("http://{host}:{port}")
    };
    let ingest = host(&args.ingest_bind, stack.ingest_port());
    let query = host(&args.query_bind, stack.query_port());
    let detector = host(&args.detector_bind, stack.detector_port());
    let shutdown = runtime::shutdown::on_signal();
    let task = tokio::spawn(stack.run_until(shutdown.clone()));
    println!("threesigma is up ({}).", database.description);
    println!("  console   {query}/  (sign in with a user's email and password)");
    println!("  ingest    POST {ingest}/api/v1/logs");
    println!(
        "  query     GET  {query}/api/v1/incidents   GET {query}/api/v1/logs   docs: {query}/api/v1/docs/"
    );
    println!("  detector  GET  {detector}/metrics");
    if generated {
        println!(
            "No JWT_SECRET set: using a development secret made up for this run (tokens die with it)."
        );
    }
    if let Some((email, password)) = &admin {
        println!("Admin login (created now): {email} / {password}");
    }
    println!("Tokens:");
    println!("  export INGEST_TOKEN={ingest_token}");
    println!("  export READ_TOKEN={read_token}");
    println!("Send a log:");
    println!(
        "  curl -X POST {ingest}/api/v1/logs -H \"Authorization: Bearer $INGEST_TOKEN\" -H 'Content-Type: application/json' \\\n       -d '{{\"service\":\"web\",\"level\":\"error\",\"message\":\"boom\"}}'"
    );
    println!("Press Ctrl-C to stop.");
    Ok(Running {
        database,
        ingest,
        query,
        ingest_token,
        read_token,
        shutdown,
        task,
    })
}

async fn finish(running: Running) -> anyhow::Result<()> {
    let result = running
        .task
        .await
        .map_err(anyhow::Error::from)
        .and_then(|result| result);
    if let Some(cluster) = &running.database.cluster
        && let Err(error) = cluster.stop()
    {
        eprintln!("Stopping the private PostgreSQL cluster failed: {error:#}");
    }
    result
}

/// `threesigma up`.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let running = start(&args, None).await?;
    finish(running).await
}

/// `threesigma demo`: `up`, then 30 minutes of backfilled baseline for a few services, live
/// traffic, and a burst on one of them; prints the incident as soon as it opens.
pub async fn demo(args: UpArgs) -> anyhow::Result<()> {
    let running = start(&args, Some(Duration::from_secs(2))).await?;
    let client = reqwest::Client::new();
    let profiles = traffic::demo_profiles();
    println!();
    println!(
        "Demo: backfilling 30 minutes of baseline traffic for checkout, search and billing..."
    );
    let shipper = traffic::Shipper::new(client.clone(), &running.ingest, &running.ingest_token);
    traffic::backfill(&shipper, &profiles, Utc::now(), 30).await?;

    let live = tokio::spawn(live_traffic(shipper.clone(), running.shutdown.clone()));
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
        () = running.shutdown.cancelled() => {}
    }
    if !running.shutdown.is_cancelled() {
        println!("Demo: checkout starts failing: sending a burst of 120 errors...");
        traffic::burst(&shipper, "checkout", 120).await?;
        watch_for_incident(
            &client,
            &running.query,
            &running.read_token,
            &running.shutdown,
        )
        .await;
    }
    let result = finish(running).await;
    live.abort();
    result
}

/// Steady traffic in real time: every 5 s, a twelfth of each service's minute.
async fn live_traffic(shipper: traffic::Shipper, shutdown: CancellationToken) {
    let profiles = traffic::demo_profiles();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut slice: usize = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let minute = domain::Minute::containing(Utc::now());
        let now = Utc::now();
        let events: Vec<_> = profiles
            .iter()
            .flat_map(|profile| traffic::minute_events(profile, minute))
            .enumerate()
            .filter(|(i, _)| i % 12 == slice % 12)
            .map(|(_, mut event)| {
                event["timestamp"] = serde_json::Value::from(now.to_rfc3339());
                event
            })
            .collect();
        if let Err(error) = shipper.send(&events).await {
            tracing::warn!(%error, "Demo traffic was not accepted.");
        }
        slice += 1;
    }
}

async fn watch_for_incident(
    client: &reqwest::Client,
    query: &str,
    token: &str,
    shutdown: &CancellationToken,
) {
    println!("Demo: waiting for the detector...");
    let url = format!("{query}/api/v1/incidents?status=open");
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = shutdown.cancelled() => return,
        }
        let Ok(response) = client.get(&url).bearer_auth(token).send().await else {
            continue;
        };
        let Ok(page) = response.json::<serde_json::Value>().await else {
            continue;
        };
        if let Some(incident) = page["data"].as_array().and_then(|data| data.first()) {
            println!();
            println!(
                "Incident #{} opened: {}",
                incident["id"],
                incident["title"].as_str().unwrap_or("")
            );
            // The title's ± is the spread the test judged in (it can differ from the
            // sample's standard deviation): name each figure for what it is.
            println!(
                "  severity {}, {} errors/min; baseline: mean {:.1}, sample sd {:.1} over {} minutes",
                incident["severity"].as_str().unwrap_or(""),
                incident["current_count"],
                incident["baseline"]["mean"].as_f64().unwrap_or(0.0),
                incident["baseline"]["stddev"].as_f64().unwrap_or(0.0),
                incident["baseline"]["minutes"],
            );
            println!(
                "  details:  curl -H \"Authorization: Bearer $READ_TOKEN\" {query}/api/v1/incidents/{}",
                incident["id"]
            );
            println!(
                "  its logs: curl -H \"Authorization: Bearer $READ_TOKEN\" {query}/api/v1/incidents/{}/logs",
                incident["id"]
            );
            println!("  in the console: {query}/incidents/{}", incident["id"]);
            print_explanation(client, query, token, &incident["id"]).await;
            println!("It resolves itself after 5 quiet minutes. Press Ctrl-C to stop.");
            return;
        }
    }
}

/// Prints what changed in the incident once the detector has explained it (within a few
/// seconds of opening; gives up quietly after ten).
async fn print_explanation(
    client: &reqwest::Client,
    query: &str,
    token: &str,
    id: &serde_json::Value,
) {
    let url = format!("{query}/api/v1/incidents/{id}");
    for _ in 0..20 {
        let detail = match client.get(&url).bearer_auth(token).send().await {
            Ok(response) => response
                .json::<serde_json::Value>()
                .await
                .unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let explanation = &detail["explanation"];
        if explanation.is_object() {
            println!("  what changed:");
            let empty = Vec::new();
            let patterns = explanation["patterns"].as_array().unwrap_or(&empty);
            for pattern in patterns.iter().take(3) {
                println!(
                    "    {:>5} (before: {:>3}){} {}",
                    pattern["window_count"],
                    pattern["baseline_count"],
                    if pattern["new"] == true {
                        " new"
                    } else {
                        "    "
                    },
                    pattern["template"].as_str().unwrap_or("")
                );
            }
            for value in explanation["attributes"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .take(3)
            {
                println!(
                    "    {:>5} (before: {:>3})     {}={}",
                    value["window_count"],
                    value["baseline_count"],
                    value["key"].as_str().unwrap_or(""),
                    value["value"].as_str().unwrap_or("")
                );
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
