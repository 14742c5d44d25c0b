//! Detection settings: the decision rule ([`Algorithm`]), its thresholds and windows
//! ([`DetectionConfig`]), and the invariants a usable configuration keeps ([`ConfigError`]).

use serde::{Deserialize, Serialize};

use crate::incident::{Named, Signal, UnknownName};

/// Which decision rule opens incidents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// The original rule: z > `z_threshold` and count > `min_count`, population σ over the
    /// zero-filled baseline, σ = 0 giving z = 999. Error counts only.
    Classic,
    /// A tail-probability test for counts: the chance of seeing at least this many errors
    /// under the baseline's predictive distribution (negative binomial whose variance is the
    /// observed variance when that exceeds the mean, never less than the mean, widened for
    /// the uncertainty of a 30-minute estimate), on the minute alone and on the last two
    /// minutes together; plus the error-rate signal.
    NegativeBinomial,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Classic => "classic",
            Algorithm::NegativeBinomial => "negative_binomial",
        }
    }
}

impl Named for Algorithm {
    const ALL: &'static [Algorithm] = &[Algorithm::Classic, Algorithm::NegativeBinomial];

    fn as_str(self) -> &'static str {
        Algorithm::as_str(self)
    }
}

impl std::str::FromStr for Algorithm {
    type Err = UnknownName;

    fn from_str(value: &str) -> Result<Algorithm, UnknownName> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|algorithm| algorithm.as_str() == value)
            .ok_or_else(|| UnknownName {
                kind: "algorithm",
                value: value.to_owned(),
            })
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds and windows of detection. Durations are in whole minutes because detection
/// works in minute buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionConfig {
    pub algorithm: Algorithm,
    /// Classic: z above which a bucket opens an incident.
    pub z_threshold: f64,
    /// Classic: z above which a bucket keeps an open incident alive (hysteresis).
    pub stay_z: f64,
    /// Classic: z above which an incident is critical.
    pub critical_z: f64,
    /// Negative binomial: tail probability at or below which a bucket opens an incident.
    pub p_open: f64,
    /// Negative binomial: tail probability at or below which a bucket keeps an incident
    /// alive (hysteresis: above `p_open`).
    pub p_stay: f64,
    /// Negative binomial: tail probability at or below which an incident is critical.
    pub p_critical: f64,
    /// Negative binomial: the predictive variance is at least this multiple of the mean.
    /// 1 assumes Poisson counts unless the baseline shows otherwise; raise it for services
    /// whose errors come in clumps shorter than the baseline can show.
    pub min_dispersion: f64,
    /// Error rate: the over-dispersion of the error ratio is at least this (1: binomial
    /// unless the baseline shows more). Not a setting: a service's learned [`Profile`]
    /// raises it ([`DetectionConfig::with_profile`]).
    ///
    /// [`Profile`]: super::Profile
    #[serde(default = "one")]
    pub min_rate_dispersion: f64,
    /// The learned dispersions of sums over the windows the tests judge (from the
    /// service's [`Profile`]; empty without one). Not a setting.
    ///
    /// [`Profile`]: super::Profile
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window_dispersions: Vec<super::profile::WindowDispersion>,
    /// Whether `min_dispersion` and `min_rate_dispersion` include the service's learned
    /// profile (recorded with verdicts, so a reader can tell).
    #[serde(default)]
    pub profiled: bool,
    /// Whether a service's learned daily rhythm raises its expectations (the setting).
    #[serde(default = "yes")]
    pub daily_rhythm: bool,
    /// The service's learned daily rhythm, when `daily_rhythm` and it has one
    /// ([`DetectionConfig::with_rhythm`]). Not a setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm: Option<super::Rhythm>,
    /// Errors a bucket must exceed to open or keep an incident (the original's guard).
    pub min_count: u64,
    /// Error rate: the bucket's error ratio must be at least this multiple of the baseline
    /// ratio (an effect-size guard: at high traffic tiny ratio shifts are "significant"
    /// without mattering).
    pub rate_min_factor: f64,
    /// Whether the error-rate signal is evaluated (negative binomial algorithm only).
    pub error_rate: bool,
    /// Minutes before a bucket that form its baseline.
    pub baseline_minutes: u32,
    /// Fewest usable baseline minutes for a verdict. With fewer among the last
    /// `baseline_minutes` (anomalous minutes are left out), the baseline reaches further
    /// back, up to `baseline_lookback_minutes`; with fewer still, it takes the last
    /// `baseline_minutes` as they are (the anomaly has become the norm). Only a service
    /// with less history than this is not judged.
    pub min_baseline_minutes: u32,
    /// How far back a baseline may reach for usable minutes when anomalous minutes leave
    /// too few among the last `baseline_minutes`.
    pub baseline_lookback_minutes: u32,
    /// Complete minutes whose counts change within this many minutes of their end (data
    /// that arrived late) are judged again and may open incidents; later changes are judged
    /// only to keep them out of baselines if anomalous.
    pub lateness_minutes: u32,
    /// Consecutive quiet complete minutes after which an incident resolves itself.
    pub resolve_after: u32,
    /// Minutes after resolution during which a new firing reopens the incident.
    pub reopen_window: u32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            algorithm: Algorithm::NegativeBinomial,
            z_threshold: 3.0,
            stay_z: 2.0,
            critical_z: 5.0,
            p_open: 1e-5,
            p_stay: 1e-3,
            p_critical: 1e-12,
            min_dispersion: 1.0,
            min_rate_dispersion: 1.0,
            window_dispersions: Vec::new(),
            profiled: false,
            daily_rhythm: true,
            rhythm: None,
            min_count: 5,
            rate_min_factor: 2.0,
            error_rate: true,
            baseline_minutes: 30,
            min_baseline_minutes: 10,
            baseline_lookback_minutes: 120,
            lateness_minutes: 10,
            resolve_after: 5,
            reopen_window: 30,
        }
    }
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

impl DetectionConfig {
    /// The original design's rule, for comparison.
    pub fn classic() -> DetectionConfig {
        DetectionConfig {
            algorithm: Algorithm::Classic,
            ..DetectionConfig::default()
        }
    }

    /// This configuration for a service with `profile`: its learned dispersion floors the
    /// predictive variance (never below `min_dispersion`). Without a profile (too little
    /// history), the configuration as it is.
    pub fn with_profile(&self, profile: Option<&super::Profile>) -> DetectionConfig {
        let mut config = self.clone();
        if let Some(profile) = profile {
            config.min_dispersion = config.min_dispersion.max(profile.dispersion);
            config.min_rate_dispersion = config.min_rate_dispersion.max(profile.rate_dispersion);
            config.window_dispersions = profile.windows.to_vec();
            config.profiled = true;
        }
        config
    }

    /// The floor of the count test's variance over a `window`-minute sum: `min_dispersion`,
    /// or the learned dispersion of such sums when larger.
    pub fn count_dispersion(&self, window: u32) -> f64 {
        self.learned_for(window, self.min_dispersion, |learned| learned.dispersion)
    }

    /// The same for the error ratio: `min_rate_dispersion`, or the learned dispersion of
    /// the ratio over such sums when larger.
    pub fn ratio_dispersion(&self, window: u32) -> f64 {
        self.learned_for(window, self.min_rate_dispersion, |learned| {
            learned.rate_dispersion
        })
    }

    /// `floor`, or what `field` says was learned for `window`-minute sums when larger.
    fn learned_for(
        &self,
        window: u32,
        floor: f64,
        field: impl Fn(&super::profile::WindowDispersion) -> f64,
    ) -> f64 {
        self.window_dispersions
            .iter()
            .filter(|learned| learned.minutes == window)
            .map(field)
            .fold(floor, f64::max)
    }

    /// This configuration for a service with `rhythm` (when `daily_rhythm` is on; never for
    /// the classic rule, which reproduces the original).
    pub fn with_rhythm(mut self, rhythm: Option<super::Rhythm>) -> DetectionConfig {
        self.rhythm =
            rhythm.filter(|_| self.daily_rhythm && self.algorithm == Algorithm::NegativeBinomial);
        self
    }

    /// The signals this configuration evaluates.
    pub fn signals(&self) -> &'static [Signal] {
        match (self.algorithm, self.error_rate) {
            (Algorithm::NegativeBinomial, true) => &[Signal::ErrorCount, Signal::ErrorRate],
            _ => &[Signal::ErrorCount],
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("detection.{0} must be greater than zero")]
    Zero(&'static str),
    #[error("detection.stay_z must not exceed detection.z_threshold")]
    StayAboveOpen,
    #[error(
        "detection.p_open, p_stay and p_critical must be probabilities with p_critical <= p_open <= p_stay"
    )]
    Probabilities,
    #[error("detection.min_baseline_minutes must not exceed detection.baseline_minutes")]
    MinBaselineTooLarge,
    #[error("detection.baseline_lookback must be at least detection.baseline")]
    LookbackTooShort,
    #[error("detection.rate_min_factor must be at least 1")]
    RateFactor,
    #[error("detection.min_dispersion must be at least 1")]
    Dispersion,
}

impl DetectionConfig {
    /// Checks the invariants the lifecycle relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.baseline_minutes == 0 {
            return Err(ConfigError::Zero("baseline_minutes"));
        }
        if self.min_baseline_minutes == 0 {
            return Err(ConfigError::Zero("min_baseline_minutes"));
        }
        if self.resolve_after == 0 {
            return Err(ConfigError::Zero("resolve_after"));
        }
        if self.min_baseline_minutes > self.baseline_minutes {
            return Err(ConfigError::MinBaselineTooLarge);
        }
        if self.baseline_lookback_minutes < self.baseline_minutes {
            return Err(ConfigError::LookbackTooShort);
        }
        if self.stay_z > self.z_threshold {
            return Err(ConfigError::StayAboveOpen);
        }
        let probability = |p: f64| p > 0.0 && p < 1.0;
        if !(probability(self.p_open)
            && probability(self.p_stay)
            && probability(self.p_critical)
            && self.p_critical <= self.p_open
            && self.p_open <= self.p_stay)
        {
            return Err(ConfigError::Probabilities);
        }
        if self.rate_min_factor.is_nan() || self.rate_min_factor < 1.0 {
            return Err(ConfigError::RateFactor);
        }
        if self.min_dispersion.is_nan() || self.min_dispersion < 1.0 {
            return Err(ConfigError::Dispersion);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_invariants() {
        assert!(DetectionConfig::default().validate().is_ok());
        let bad = DetectionConfig {
            stay_z: 4.0,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::StayAboveOpen));
        let bad = DetectionConfig {
            resolve_after: 0,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("resolve_after")));
        let bad = DetectionConfig {
            p_open: 0.1,
            p_stay: 0.01,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Probabilities));
    }

    #[test]
    fn a_rhythm_is_used_only_when_the_setting_wants_it() {
        let rhythm = crate::detection::Rhythm {
            levels: vec![1.0; crate::detection::rhythm::SLOTS],
            weekend: None,
            days: 3,
        };
        let on = DetectionConfig::default().with_rhythm(Some(rhythm.clone()));
        assert_eq!(on.rhythm, Some(rhythm.clone()));
        let off = DetectionConfig {
            daily_rhythm: false,
            ..DetectionConfig::default()
        };
        assert_eq!(off.with_rhythm(Some(rhythm.clone())).rhythm, None);
        assert_eq!(
            DetectionConfig::classic().with_rhythm(Some(rhythm)).rhythm,
            None
        );
    }

    #[test]
    fn classic_evaluates_error_counts_only() {
        assert_eq!(DetectionConfig::classic().signals(), &[Signal::ErrorCount]);
        assert_eq!(
            DetectionConfig::default().signals(),
            &[Signal::ErrorCount, Signal::ErrorRate]
        );
    }
}
