//! Webhook notifications on incident transitions (opened, reopened, escalated, resolved).
//!
//! Detection never waits for a webhook: transitions are handed to a bounded queue (a full
//! queue drops the notification, counted in `threesigma_detector_webhook_dropped_total`), and
//! a background task delivers each one with retries and exponential backoff. A 2xx answer is
//! a delivery; a 4xx other than 408 and 429 is final (the receiver refuses this body, and
//! retrying would not change that); anything else is retried up to `max_attempts` times.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use runtime::Secret;
use runtime::settings::duration;
use serde::{Deserialize, Serialize};
use store::models::IncidentRow;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::explain::ExplanationDigest;
use crate::metrics::DetectorMetrics;

/// Where and how to deliver notifications. Disabled while `url` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Endpoint to POST notifications to (empty: no webhook). A [`Secret`]: chat webhook
    /// URLs carry their credential in the path.
    pub url: Secret,
    /// Value of the `Authorization` header sent with each notification (empty: none).
    pub authorization: Secret,
    /// Base URL of the query API, for the `link` of each notification (empty: no link).
    pub link_base: String,
    /// Timeout of one delivery attempt.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Attempts per notification before giving up.
    pub max_attempts: u32,
    /// First pause between attempts; doubles up to `retry_max`.
    #[serde(with = "duration")]
    pub retry_min: Duration,
    #[serde(with = "duration")]
    pub retry_max: Duration,
    /// Notifications waiting for delivery at most; more are dropped.
    pub queue: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            url: Secret::default(),
            authorization: Secret::default(),
            link_base: String::new(),
            timeout: Duration::from_secs(5),
            max_attempts: 6,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            queue: 1_000,
        }
    }
}

/// The baseline an incident was judged against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookBaseline {
    pub mean: f64,
    pub stddev: f64,
    pub minutes: i32,
    pub total_mean: f64,
}

/// The incident, as a notification carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookIncident {
    pub id: i64,
    pub service: String,
    pub signal: domain::Signal,
    pub status: domain::Status,
    pub severity: domain::Severity,
    pub title: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub first_minute: DateTime<Utc>,
    pub last_fired_minute: DateTime<Utc>,
    pub current_z: f64,
    pub peak_z: f64,
    pub current_count: i64,
    pub current_total: i64,
    pub p_value: Option<f64>,
    pub baseline: WebhookBaseline,
}

impl From<IncidentRow> for WebhookIncident {
    fn from(row: IncidentRow) -> Self {
        WebhookIncident {
            id: row.id,
            service: row.service,
            signal: row.signal,
            status: row.status,
            severity: row.severity,
            title: row.title,
            opened_at: row.opened_at,
            acknowledged_at: row.acknowledged_at,
            resolved_at: row.resolved_at,
            first_minute: row.first_minute,
            last_fired_minute: row.last_fired_minute,
            current_z: row.current_z,
            peak_z: row.peak_z,
            current_count: row.current_count,
            current_total: row.current_total,
            p_value: row.p_value,
            baseline: WebhookBaseline {
                mean: row.baseline_mean,
                stddev: row.baseline_stddev,
                minutes: row.baseline_minutes,
                total_mean: row.baseline_total_mean,
            },
        }
    }
}

/// The JSON body POSTed to the webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// `opened`, `reopened`, `escalated` or `resolved`.
    pub event: domain::EventKind,
    pub incident: WebhookIncident,
    /// Where to read the incident in the query API, when `link_base` is set.
    pub link: Option<String>,
    /// What the incident is made of: its top three message templates and attribute values
    /// (absent until the incident has an explanation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<ExplanationDigest>,
    pub sent_at: DateTime<Utc>,
}

/// Hands notifications to the delivery task without ever waiting.
#[derive(Clone)]
pub struct Notifier {
    sender: mpsc::Sender<Notification>,
    link_base: String,
    metrics: DetectorMetrics,
}

impl Notifier {
    /// Starts the delivery task; `None` when no webhook is configured.
    pub fn start(
        settings: &WebhookSettings,
        metrics: DetectorMetrics,
    ) -> anyhow::Result<Option<(Notifier, JoinHandle<()>)>> {
        if settings.url.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        let (sender, receiver) = mpsc::channel(settings.queue.max(1));
        let task = tokio::spawn(deliver_all(
            receiver,
            client,
            settings.clone(),
            metrics.clone(),
        ));
        let notifier = Notifier {
            sender,
            link_base: settings.link_base.trim_end_matches('/').to_owned(),
            metrics,
        };
        Ok(Some((notifier, task)))
    }

    /// Queues a notification of `event` for `incident`; drops it if the queue is full.
    pub fn notify(
        &self,
        event: domain::EventKind,
        incident: IncidentRow,
        explanation: Option<ExplanationDigest>,
    ) {
        let link = (!self.link_base.is_empty())
            .then(|| format!("{}/api/v1/incidents/{}", self.link_base, incident.id));
        let notification = Notification {
            event,
            incident: incident.into(),
            link,
            explanation,
            sent_at: Utc::now(),
        };
        if self.sender.try_send(notification).is_err() {
            self.metrics.webhook_dropped.inc();
            tracing::warn!(%event, "Webhook queue full; notification dropped.");
        }
    }
}

/// Delivers queued notifications, several at a time, until the queue closes and drains.
async fn deliver_all(
    mut receiver: mpsc::Receiver<Notification>,
    client: reqwest::Client,
    settings: WebhookSettings,
    metrics: DetectorMetrics,
) {
    let slots = Arc::new(Semaphore::new(8));
    let mut deliveries = tokio::task::JoinSet::new();
    while let Some(notification) = receiver.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (client, settings, metrics) = (client.clone(), settings.clone(), metrics.clone());
        deliveries.spawn(async move {
            deliver(&client, &settings, &metrics, &notification).await;
            drop(slot);
        });
        while deliveries.try_join_next().is_some() {}
    }
    while deliveries.join_next().await.is_some() {}
}

async fn deliver(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    metrics: &DetectorMetrics,
    notification: &Notification,
) {
    let mut backoff = settings.retry_min;
    for attempt in 1..=settings.max_attempts.max(1) {
        let mut request = client.post(settings.url.expose()).json(notification);
        if !settings.authorization.is_empty() {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                settings.authorization.expose(),
            );
        }
        let outcome = request.send().await;
        match outcome {
            Ok(response) if response.status().is_success() => {
                metrics.webhook_delivered.inc();
                return;
            }
            Ok(response)
                if response.status().is_client_error()
                    && response.status() != reqwest::StatusCode::REQUEST_TIMEOUT
                    && response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::warn!(status = %response.status(), incident = notification.incident.id, "Webhook refused the notification.");
                metrics.webhook_failed.inc();
                return;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "Webhook delivery failed; retrying.");
            }
            Err(error) => {
                // The URL is a secret (chat webhooks carry their credential in it): log the
                // error without it.
                let error = error.without_url();
                tracing::warn!(%error, attempt, "Webhook delivery failed; retrying.");
            }
        }
        metrics.webhook_retries.inc();
        if attempt < settings.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(settings.retry_max);
        }
    }
    metrics.webhook_failed.inc();
    tracing::error!(
        incident = notification.incident.id,
        event = %notification.event,
        "Webhook notification given up."
    );
}
