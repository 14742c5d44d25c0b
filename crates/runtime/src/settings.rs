//! Layered settings, the same way in every binary:
//! defaults → TOML file (`--config` / `THREESIGMA_CONFIG`) → environment
//! (`THREESIGMA__SECTION__KEY`) → command-line flags (each also readable from its env var).
//!
//! Each binary's settings type is a serde struct whose `Default` is the single source of the
//! defaults; [`settings_help`] renders them, with their environment variables, into `--help`.
//! Flags are the last layer ([`Overrides`]), never a patch applied after loading, so a value
//! has one path from wherever it was given to the struct.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Prefix of every settings environment variable.
pub const ENV_PREFIX: &str = "THREESIGMA";

/// A setting is missing, malformed or unsafe. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The loader's own message, in full: not also kept as a source, or an error chain
    /// (`{:#}`, every `main`) would print it twice.
    #[error("settings: {0}")]
    Load(config::ConfigError),
    #[error("settings: {setting}: {reason}")]
    Invalid { setting: String, reason: String },
}

impl From<config::ConfigError> for SettingsError {
    fn from(error: config::ConfigError) -> SettingsError {
        SettingsError::Load(error)
    }
}

impl SettingsError {
    pub fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// A binary's settings: a serde struct whose `Default` holds every default.
pub trait Layered: DeserializeOwned + Serialize + Default {
    /// Dotted keys whose environment value is a comma-separated list
    /// (`THREESIGMA__DETECTOR__SERVICES=a,b`).
    const LIST_KEYS: &'static [&'static str] = &[];
}

/// Command-line values: the last layer, over every other. Flags that were not given add
/// nothing.
#[derive(Debug, Default, Clone)]
pub struct Overrides(Vec<(&'static str, Value)>);

impl Overrides {
    pub fn new() -> Overrides {
        Overrides::default()
    }

    /// `key` = `value` when the flag was given. Values are written as serde writes them, so
    /// an enum flag becomes the same word the config file uses.
    pub fn set<V: Serialize>(mut self, key: &'static str, value: Option<V>) -> Overrides {
        if let Some(value) = value.and_then(|value| serde_json::to_value(value).ok())
            && let Some(value) = config_value(value)
        {
            self.0.push((key, value));
        }
        self
    }

    /// A duration, written the human way (`10s`).
    pub fn duration(self, key: &'static str, value: Option<Duration>) -> Overrides {
        self.set(
            key,
            value.map(|value| humantime::format_duration(value).to_string()),
        )
    }

    /// A repeatable flag: nothing when it was not given at all.
    pub fn list(self, key: &'static str, values: &[String]) -> Overrides {
        self.set(key, (!values.is_empty()).then_some(values))
    }

    /// A switch: `true` when given, nothing otherwise (the lower layers decide).
    pub fn switch(self, key: &'static str, on: bool) -> Overrides {
        self.set(key, on.then_some(true))
    }

    /// These overrides followed by `other`'s (which win).
    pub fn and(mut self, other: Overrides) -> Overrides {
        self.0.extend(other.0);
        self
    }
}

fn config_value(value: serde_json::Value) -> Option<Value> {
    let kind = match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(value) => ValueKind::Boolean(value),
        serde_json::Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(value), _) => ValueKind::I64(value),
            (None, Some(value)) => ValueKind::U64(value),
            _ => ValueKind::Float(number.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(value) => ValueKind::String(value),
        serde_json::Value::Array(values) => {
            ValueKind::Array(values.into_iter().filter_map(config_value).collect())
        }
        serde_json::Value::Object(_) => return None,
    };
    Some(Value::new(None, kind))
}

/// The config file to read: the flag, else `THREESIGMA_CONFIG`.
pub fn config_file(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("THREESIGMA_CONFIG").map(PathBuf::from))
}

/// Loads settings of type `T` through every layer.
pub fn load<T: Layered>(file: Option<&Path>, overrides: Overrides) -> Result<T, SettingsError> {
    load_as::<T, T>(file, overrides)
}

/// Loads the layers of `T` (its defaults first) into `U`, a view of some of its keys.
pub fn load_as<T: Layered, U: DeserializeOwned>(
    file: Option<&Path>,
    overrides: Overrides,
) -> Result<U, SettingsError> {
    let mut builder = Config::builder().add_source(Config::try_from(&T::default())?);
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    let mut environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",");
    for key in T::LIST_KEYS {
        environment = environment.with_list_parse_key(key);
    }
    builder = builder.add_source(environment);
    for (key, value) in overrides.0 {
        builder = builder.set_override(key, value)?;
    }
    let config = builder.build()?;
    refuse_unknown::<T>(&config)?;
    Ok(config.try_deserialize()?)
}

/// Every section any threesigma binary reads. One config file serves several binaries
/// (`up`, a shared compose file), so a binary skips the sections of the others; a section
/// none of them knows is a typo.
pub const SECTIONS: &[&str] = &[
    "server",
    "database",
    "ingest",
    "query",
    "detector",
    "detection",
    "webhook",
    "auth",
    "rate_limit",
];

/// Refuses a setting nobody reads (`[ingest] writters`, `[ingset]`,
/// `THREESIGMA__INGEST__WRITTERS`) instead of silently running on the default: a key in one
/// of `T`'s own sections that `T` does not have, or a section no binary has.
fn refuse_unknown<T: Layered>(config: &Config) -> Result<(), SettingsError> {
    let (Ok(serde_json::Value::Object(loaded)), Ok(serde_json::Value::Object(known))) = (
        config.clone().try_deserialize::<serde_json::Value>(),
        serde_json::to_value(T::default()),
    ) else {
        return Ok(());
    };
    for (section, value) in &loaded {
        match known.get(section) {
            Some(serde_json::Value::Object(keys)) => {
                if let serde_json::Value::Object(given) = value
                    && let Some(key) = given.keys().find(|key| !keys.contains_key(*key))
                {
                    return Err(SettingsError::invalid(
                        format!("{section}.{key}"),
                        "unknown setting (`--help` lists them all)",
                    ));
                }
            }
            Some(_) => {}
            None if SECTIONS.contains(&section.as_str()) => {}
            None => {
                return Err(SettingsError::invalid(
                    section.clone(),
                    format!(
                        "unknown section (known: {}; `--help` lists every setting)",
                        SECTIONS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The environment variable of a dotted settings key.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// Every setting of `T` with its default and environment variable, for `--help`.
pub fn settings_help<T: Serialize + Default>() -> String {
    let mut lines = Vec::new();
    if let Ok(value) = toml::Value::try_from(T::default()) {
        collect(&value, "", &mut lines);
    }
    let width = lines
        .iter()
        .map(|(setting, _)| setting.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from(
        "Settings (defaults shown). Set them in the --config TOML file ([section] key = value), \
         as environment variables, or with the flags above:\n",
    );
    for (setting, key) in lines {
        help.push_str(&format!("  {setting:width$}  {}\n", env_var(&key)));
    }
    help
}

fn collect(value: &toml::Value, prefix: &str, lines: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect(inner, &path, lines);
            }
        }
        other => lines.push((format!("{prefix} = {other}"), prefix.to_owned())),
    }
}

/// Serde for durations written the human way (`10s`, `5m`, `90d`); plain integers are
/// seconds.
pub mod duration {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
            Raw::Seconds(seconds) => Ok(Duration::from_secs(seconds)),
        }
    }

    /// Parses `10s`, `5m`, `1h 30m`, `90d`, `250ms`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|error| {
            format!("invalid duration {text:?} ({error}); write it like 10s, 5m or 90d")
        })
    }
}

/// Fails with a message naming `setting` when `value` is zero.
pub fn require_nonzero<N: PartialEq + Default>(
    setting: &str,
    value: N,
) -> Result<(), SettingsError> {
    if value == N::default() {
        Err(SettingsError::invalid(setting, "must be greater than zero"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        name: String,
        inner: Inner,
        tags: Vec<String>,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        count: u32,
        #[serde(with = "duration")]
        wait: Duration,
        mode: Mode,
    }

    #[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Durable,
        Buffered,
    }

    impl Layered for Sample {
        const LIST_KEYS: &'static [&'static str] = &["tags"];
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                name: "x".into(),
                inner: Inner::default(),
                tags: Vec::new(),
            }
        }
    }

    impl Default for Inner {
        fn default() -> Self {
            Inner {
                count: 3,
                wait: Duration::from_secs(10),
                mode: Mode::Durable,
            }
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("threesigma-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            "name = \"file\"\n[inner]\ncount = 7\nwait = \"5m\"\n",
        )
        .unwrap();
        let loaded: Sample = load(
            Some(&file),
            Overrides::new()
                .set("name", Some("flag"))
                .set("inner.count", None::<u32>),
        )
        .unwrap();
        assert_eq!(loaded.name, "flag");
        assert_eq!(loaded.inner.count, 7);
        assert_eq!(loaded.inner.wait, Duration::from_secs(300));
        let defaults: Sample = load(None, Overrides::new()).unwrap();
        assert_eq!(defaults, Sample::default());
    }

    #[test]
    fn flags_of_every_type_are_layers() {
        let loaded: Sample = load(
            None,
            Overrides::new()
                .set("inner.mode", Some(Mode::Buffered))
                .set("inner.count", Some(9_u32))
                .duration("inner.wait", Some(Duration::from_millis(250)))
                .list("tags", &["a".to_owned(), "b".to_owned()]),
        )
        .unwrap();
        assert_eq!(loaded.inner.mode, Mode::Buffered);
        assert_eq!(loaded.inner.count, 9);
        assert_eq!(loaded.inner.wait, Duration::from_millis(250));
        assert_eq!(loaded.tags, ["a", "b"]);
        let untouched: Sample = load(None, Overrides::new().list("tags", &[])).unwrap();
        assert!(untouched.tags.is_empty());
    }

    #[test]
    fn help_lists_every_setting_with_its_env_var() {
        let help = settings_help::<Sample>();
        assert!(help.contains("inner.count = 3"), "{help}");
        assert!(help.contains("THREESIGMA__INNER__WAIT"), "{help}");
        assert!(help.contains("inner.wait = \"10s\""), "{help}");
        assert!(help.contains("inner.mode = \"durable\""), "{help}");
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("threesigma-unknown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        for (text, named) in [
            ("[inner]\ncont = 7\n", "inner.cont"),
            ("[ingset]\nwriters = 3\n", "ingset"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = load::<Sample>(Some(&file), Overrides::new())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(named) && error.contains("unknown"),
                "{error}"
            );
        }
        // Another binary's section is that binary's business.
        std::fs::write(&file, "[detector]\ninterval = \"5s\"\n[inner]\ncount = 2\n").unwrap();
        let loaded: Sample = load(Some(&file), Overrides::new()).unwrap();
        assert_eq!(loaded.inner.count, 2);
    }

    #[test]
    fn a_bad_value_is_reported_once() {
        let error =
            load::<Sample>(None, Overrides::new().set("inner.mode", Some("fast"))).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(chain.matches("fast").count(), 1, "{chain}");
        assert!(chain.contains("inner.mode"), "{chain}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(
            duration::parse("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(
            duration::parse("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(duration::parse("soon").unwrap_err().contains("10s"));
    }
}
