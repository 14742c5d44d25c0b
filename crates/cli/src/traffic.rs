//! Simulated log traffic for `threesigma demo` and the end-to-end test: a backfilled
//! baseline, steady live traffic, and a burst of errors, all sent through the ingest API
//! the way a shipper would.

use chrono::{DateTime, Duration, Utc};
use domain::Minute;
use serde_json::json;

/// One simulated service.
#[derive(Debug, Clone)]
pub struct Profile {
    pub service: &'static str,
    /// Errors in a minute, before the minute-to-minute wobble (0, 1 or 2 more).
    pub errors: u64,
    /// Non-error events in a minute.
    pub infos: u64,
}

/// The services of the demo.
pub fn demo_profiles() -> Vec<Profile> {
    vec![
        Profile {
            service: "checkout",
            errors: 2,
            infos: 40,
        },
        Profile {
            service: "search",
            errors: 1,
            infos: 80,
        },
        Profile {
            service: "billing",
            errors: 0,
            infos: 15,
        },
    ]
}

/// Errors of `profile` in `minute`: a fixed wobble, so the baseline has spread but no
/// randomness (a demo must not page on noise).
pub fn errors_in(profile: &Profile, minute: Minute) -> u64 {
    profile.errors + minute.0.rem_euclid(3).unsigned_abs()
}

fn event(service: &str, level: &str, message: String, at: DateTime<Utc>) -> serde_json::Value {
    json!({"service": service, "level": level, "message": message, "timestamp": at.to_rfc3339()})
}

/// The same event from `host`.
fn from_host(mut event: serde_json::Value, host: &str) -> serde_json::Value {
    event["attributes"] = json!({"host": host});
    event
}

/// The events of `profile` in `minute` (spread over the minute), as NDJSON lines.
pub fn minute_events(profile: &Profile, minute: Minute) -> Vec<serde_json::Value> {
    let errors = errors_in(profile, minute);
    let total = errors + profile.infos;
    (0..total)
        .map(|i| {
            let offset =
                Duration::milliseconds(i64::try_from(i * 60_000 / total.max(1)).unwrap_or(0));
            let at = minute.start() + offset;
            if i < errors {
                let error = event(
                    profile.service,
                    "error",
                    format!("request {i} failed: upstream timeout"),
                    at,
                );
                from_host(error, if i % 2 == 0 { "web-1" } else { "web-2" })
            } else {
                event(profile.service, "info", format!("request {i} served"), at)
            }
        })
        .collect()
}

/// Sends logs to an ingest endpoint the way a shipper does.
#[derive(Clone)]
pub struct Shipper {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Shipper {
    pub fn new(client: reqwest::Client, ingest: &str, token: &str) -> Shipper {
        Shipper {
            client,
            url: format!("{ingest}/api/v1/logs"),
            token: token.to_owned(),
        }
    }

    /// Posts `events` as one NDJSON request; fails unless every event was accepted.
    pub async fn send(&self, events: &[serde_json::Value]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let body: String = events.iter().map(|event| format!("{event}\n")).collect();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() || answer["rejected"] != 0 {
            anyhow::bail!("ingest answered {status}: {answer}");
        }
        Ok(())
    }
}

/// Sends `minutes` minutes of baseline traffic ending just before the current minute.
pub async fn backfill(
    shipper: &Shipper,
    profiles: &[Profile],
    now: DateTime<Utc>,
    minutes: i64,
) -> anyhow::Result<()> {
    let current = Minute::containing(now);
    for back in (1..=minutes).rev() {
        let minute = current.minus(back);
        let events: Vec<_> = profiles
            .iter()
            .flat_map(|profile| minute_events(profile, minute))
            .collect();
        shipper.send(&events).await?;
    }
    Ok(())
}

/// Sends `count` errors for `service`, stamped now: a message its baseline never had, each
/// with its own order number, all from one host.
pub async fn burst(shipper: &Shipper, service: &str, count: u64) -> anyhow::Result<()> {
    let now = Utc::now();
    let events: Vec<_> = (0..count)
        .map(|i| {
            let error = event(
                service,
                "error",
                format!(
                    "payment provider refused order {} (card declined)",
                    41_000 + i
                ),
                now,
            );
            from_host(error, "web-3")
        })
        .collect();
    shipper.send(&events).await
}
