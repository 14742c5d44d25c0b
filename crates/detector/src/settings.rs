//! Detector settings: defaults here, then the config file, env and flags.

use std::time::Duration;

use domain::DetectionConfig;
use domain::detection::Algorithm;
use runtime::settings::{duration, require_nonzero};
use runtime::{DatabaseSettings, Layered, ServerSettings, SettingsError};
use serde::{Deserialize, Serialize};

/// Everything `threesigma-detector` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Health and metrics listener.
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub detector: LoopSettings,
    pub detection: DetectionSettings,
    /// Explanations of incidents.
    pub explain: crate::explain::ExplainSettings,
    pub webhook: crate::notify::WebhookSettings,
}

impl Layered for Settings {
    const LIST_KEYS: &'static [&'static str] = &["server.cors_origins", "detector.services"];
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // Health and metrics only: one worker is plenty.
            server: ServerSettings {
                workers: 1,
                ..ServerSettings::with_bind("0.0.0.0:8082")
            },
            database: DatabaseSettings::with_pool_size(2),
            detector: LoopSettings::default(),
            detection: DetectionSettings::default(),
            explain: crate::explain::ExplainSettings::default(),
            webhook: crate::notify::WebhookSettings::default(),
        }
    }
}

/// The polling loop and housekeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoopSettings {
    /// Time between evaluations.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Evaluate only these services (sidecar mode); empty means every active service,
    /// shared with the other replicas.
    pub services: Vec<String>,
    /// Hash buckets services are spread over when replicas share the work.
    pub buckets: u32,
    /// Daily log partitions kept ready ahead of today.
    pub partition_days_ahead: u32,
    /// Log partitions older than this many days are dropped; 0 keeps everything.
    pub retention_days: u32,
}

impl Default for LoopSettings {
    fn default() -> Self {
        LoopSettings {
            interval: Duration::from_secs(10),
            services: Vec::new(),
            buckets: 64,
            partition_days_ahead: 3,
            retention_days: 30,
        }
    }
}

/// Thresholds and windows of detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectionSettings {
    /// Decision rule: `negative_binomial` (tail probability of the count, and the error
    /// rate signal) or `classic` (the original z > 3 and count > 5, for comparison).
    pub algorithm: Algorithm,
    /// Negative binomial: tail probability at or below which a minute opens an incident.
    pub p_open: f64,
    /// Negative binomial: tail probability at or below which a minute keeps an incident
    /// open (hysteresis).
    pub p_stay: f64,
    /// Negative binomial: tail probability at or below which an incident is critical.
    pub p_critical: f64,
    /// Negative binomial: predictive variance at least this multiple of the mean (raise
    /// above 1 for services whose errors come in clumps).
    pub min_dispersion: f64,
    /// Whether the error_rate signal (errors / all events) is evaluated.
    pub error_rate: bool,
    /// Whether a service's daily rhythm, learned from the same time on previous days once
    /// it has three days of history, raises its expected errors when the day climbs.
    pub daily_rhythm: bool,
    /// Error rate: the minute's error ratio must be at least this multiple of the baseline's.
    pub rate_min_factor: f64,
    /// Classic: z above which a minute opens an incident.
    pub z_threshold: f64,
    /// Classic: z above which a minute keeps an incident open (hysteresis).
    pub stay_z: f64,
    /// Classic: z above which an incident is critical.
    pub critical_z: f64,
    /// Errors a minute (or the minutes a window judges together: two for error counts, two,
    /// three or five for the error ratio) must exceed to open or keep an incident.
    pub min_count: u64,
    /// Minutes before a bucket that form its baseline.
    #[serde(with = "duration")]
    pub baseline: Duration,
    /// Fewest usable baseline minutes for a verdict.
    #[serde(with = "duration")]
    pub min_baseline: Duration,
    /// How far back a baseline reaches for usable minutes when anomalous minutes leave too
    /// few in `baseline`.
    #[serde(with = "duration")]
    pub baseline_lookback: Duration,
    /// Data arriving up to this long after its minute ended is judged and may open an
    /// incident (marked late); later data is only kept out of baselines if anomalous.
    #[serde(with = "duration")]
    pub lateness: Duration,
    /// Quiet time after which an incident resolves itself.
    #[serde(with = "duration")]
    pub resolve_after: Duration,
    /// A new firing within this time after resolution reopens the incident.
    #[serde(with = "duration")]
    pub reopen_window: Duration,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        let config = DetectionConfig::default();
        let minutes = |count: u32| Duration::from_secs(u64::from(count) * 60);
        DetectionSettings {
            algorithm: config.algorithm,
            p_open: config.p_open,
            p_stay: config.p_stay,
            p_critical: config.p_critical,
            min_dispersion: config.min_dispersion,
            error_rate: config.error_rate,
            daily_rhythm: config.daily_rhythm,
            rate_min_factor: config.rate_min_factor,
            z_threshold: config.z_threshold,
            stay_z: config.stay_z,
            critical_z: config.critical_z,
            min_count: config.min_count,
            baseline: minutes(config.baseline_minutes),
            min_baseline: minutes(config.min_baseline_minutes),
            baseline_lookback: minutes(config.baseline_lookback_minutes),
            lateness: minutes(config.lateness_minutes),
            resolve_after: minutes(config.resolve_after),
            reopen_window: minutes(config.reopen_window),
        }
    }
}

fn whole_minutes(setting: &str, value: Duration) -> Result<u32, SettingsError> {
    if !value.as_secs().is_multiple_of(60) || value.subsec_nanos() != 0 {
        return Err(SettingsError::invalid(
            setting,
            "must be whole minutes (e.g. 30m)",
        ));
    }
    u32::try_from(value.as_secs() / 60).map_err(|_| SettingsError::invalid(setting, "is too long"))
}

impl DetectionSettings {
    /// The domain's configuration, validated.
    pub fn config(&self) -> Result<DetectionConfig, SettingsError> {
        let config = DetectionConfig {
            algorithm: self.algorithm,
            p_open: self.p_open,
            p_stay: self.p_stay,
            p_critical: self.p_critical,
            min_dispersion: self.min_dispersion,
            min_rate_dispersion: 1.0,
            window_dispersions: Vec::new(),
            profiled: false,
            daily_rhythm: self.daily_rhythm,
            rhythm: None,
            error_rate: self.error_rate,
            rate_min_factor: self.rate_min_factor,
            z_threshold: self.z_threshold,
            stay_z: self.stay_z,
            critical_z: self.critical_z,
            min_count: self.min_count,
            baseline_minutes: whole_minutes("detection.baseline", self.baseline)?,
            min_baseline_minutes: whole_minutes("detection.min_baseline", self.min_baseline)?,
            baseline_lookback_minutes: whole_minutes(
                "detection.baseline_lookback",
                self.baseline_lookback,
            )?,
            lateness_minutes: whole_minutes("detection.lateness", self.lateness)?,
            resolve_after: whole_minutes("detection.resolve_after", self.resolve_after)?,
            reopen_window: whole_minutes("detection.reopen_window", self.reopen_window)?,
        };
        config
            .validate()
            .map_err(|error| SettingsError::invalid("detection", error.to_string()))?;
        Ok(config)
    }
}

impl Settings {
    /// Refuses unusable values with a message naming the setting.
    pub fn validate(&self) -> Result<DetectionConfig, SettingsError> {
        self.database.validate()?;
        self.server.validate()?;
        require_nonzero("detector.interval", self.detector.interval)?;
        if !(1..=4096).contains(&self.detector.buckets) {
            return Err(SettingsError::invalid(
                "detector.buckets",
                "must be between 1 and 4096",
            ));
        }
        require_nonzero("webhook.max_attempts", self.webhook.max_attempts)?;
        require_nonzero("webhook.timeout", self.webhook.timeout)?;
        if !(1..=100_000).contains(&self.explain.sample_lines) {
            return Err(SettingsError::invalid(
                "explain.sample_lines",
                "must be between 1 and 100000",
            ));
        }
        if whole_minutes("explain.max_window", self.explain.max_window)? == 0 {
            return Err(SettingsError::invalid(
                "explain.max_window",
                "must be at least 1m",
            ));
        }
        if whole_minutes("explain.baseline", self.explain.baseline)? == 0 {
            return Err(SettingsError::invalid(
                "explain.baseline",
                "must be at least 1m",
            ));
        }
        for service in &self.detector.services {
            domain::ServiceName::parse(service)
                .map_err(|error| SettingsError::invalid("detector.services", error.to_string()))?;
        }
        self.detection.config()
    }

    /// The services to scope to, if any.
    pub fn scope(&self) -> Option<Vec<String>> {
        (!self.detector.services.is_empty()).then(|| self.detector.services.clone())
    }
}
