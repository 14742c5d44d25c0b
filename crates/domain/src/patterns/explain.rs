//! What changed in an incident: the message templates and attribute values that are
//! over-represented in the incident's window against its baseline.
//!
//! Both sides are samples of ERROR+ lines, each line carrying the weight that scales it up
//! to its minute's real count (a minute with 900 errors sampled as 30 lines weighs 30 a
//! line), so counts are estimates of the whole window and baseline, exact when nothing was
//! left out. A template or value is compared by its share of each side: a burst made of one
//! new message from one host shows that message's share rising from nothing and that host's
//! share from a tenth to most of the lines, while `env=prod`, on every line of both sides,
//! does not move. Ranked by the lines in excess of what the baseline's mix predicts
//! (`window − window_total × baseline_share`), the templates that make up the burst come
//! first; a single new line does not outrank a thousand. A share is over-represented when a
//! two-proportion z-test on the sampled lines reaches 3.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::miner::Miner;

/// The z a share's rise must reach to count as over-represented.
pub const OVER_REPRESENTED_Z: f64 = 3.0;

/// Attribute values per line considered at most (the rest of a line's attributes are not).
pub const MAX_ATTRIBUTES_PER_LINE: usize = 64;

/// Attribute values longer than this are not compared (bodies, stack traces).
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 200;

/// Characters of a template's example line kept.
pub const EXAMPLE_CHARS: usize = 500;

/// Sampled baseline errors below which attribute values are compared with the baseline's
/// lines of every level instead (the service's traffic: which hosts and versions it had).
pub const MIN_BASELINE_ERRORS: usize = 30;

/// One sampled log line.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub message: &'a str,
    pub attributes: &'a Value,
    /// Lines of its minute that this one stands for (1 when nothing was left out).
    pub weight: f64,
}

/// A side's size: estimated lines and lines sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SideSize {
    pub lines: u64,
    pub sampled: u64,
}

/// One template's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternChange {
    /// The template, variable parts as `<*>`.
    pub template: String,
    /// Lines of the incident window with this template (estimated when sampled).
    pub window_count: u64,
    /// Lines of the baseline with this template (estimated when sampled).
    pub baseline_count: u64,
    /// Its share of the window over its share of the baseline (the baseline share counted
    /// as half a line when it has none); `None` when the baseline had no errors at all.
    pub lift: Option<f64>,
    /// Not seen in the baseline's sample.
    pub new: bool,
    /// Its share rose beyond chance (z ≥ 3 on the sampled lines), or the baseline had no
    /// errors at all.
    pub over_represented: bool,
    /// One window line with this template: its id, time and message (its first
    /// [`EXAMPLE_CHARS`] characters).
    pub example_log_id: i64,
    pub example_ts: DateTime<Utc>,
    pub example_message: String,
}

/// One attribute value's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub key: String,
    pub value: String,
    pub window_count: u64,
    pub baseline_count: u64,
    pub lift: Option<f64>,
    pub new: bool,
}

/// What the window's attribute values were compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeBaseline {
    /// The baseline's ERROR+ lines.
    #[default]
    Errors,
    /// The baseline's lines of every level: it had too few errors
    /// ([`MIN_BASELINE_ERRORS`]).
    AllLevels,
    /// Nothing: the baseline had no lines at all; values that not every window line has.
    None,
}

/// The templates and attribute values that tell what an incident is made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub window: SideSize,
    pub baseline: SideSize,
    #[serde(default)]
    pub attribute_baseline: AttributeBaseline,
    /// Over-represented templates first, by excess lines; then the rest by window lines.
    pub patterns: Vec<PatternChange>,
    /// Over-represented attribute values only (seen on two sampled lines or more), by
    /// excess lines, against [`Explanation::attribute_baseline`].
    pub attributes: Vec<AttributeChange>,
}

/// One template's lines in a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternCount {
    pub template: String,
    /// Lines with this template (estimated when sampled).
    pub count: u64,
    /// Sampled lines with this template.
    pub sampled: u64,
    pub example_log_id: i64,
    pub example_ts: DateTime<Utc>,
    pub example_message: String,
}

/// Running counts of one key (template or attribute value) on both sides.
#[derive(Debug, Default, Clone)]
struct Tally {
    window: f64,
    window_sampled: u64,
    baseline: f64,
    baseline_sampled: u64,
    /// The first window line's id, time and message.
    example: Option<(i64, DateTime<Utc>, String)>,
}

/// Both sides' totals.
#[derive(Debug, Clone, Copy)]
struct Totals {
    window: f64,
    window_sampled: u64,
    baseline: f64,
    baseline_sampled: u64,
}

impl Totals {
    fn of(window: &[Line<'_>], baseline: &[Line<'_>]) -> Totals {
        Totals {
            window: window.iter().map(|l| l.weight).sum(),
            window_sampled: window.len() as u64,
            baseline: baseline.iter().map(|l| l.weight).sum(),
            baseline_sampled: baseline.len() as u64,
        }
    }
}

#[allow(clippy::cast_precision_loss)] // sample sizes are far below 2^52
impl Tally {
    fn baseline_share(&self, totals: &Totals) -> f64 {
        if totals.baseline > 0.0 {
            self.baseline / totals.baseline
        } else {
            0.0
        }
    }

    /// Window lines beyond what the baseline's share predicts.
    fn excess(&self, totals: &Totals) -> f64 {
        self.window - totals.window * self.baseline_share(totals)
    }

    fn lift(&self, totals: &Totals) -> Option<f64> {
        if totals.baseline_sampled == 0 || totals.window <= 0.0 {
            return None;
        }
        // Half an average baseline line for a key the baseline never showed.
        let half_line = 0.5 * totals.baseline / totals.baseline_sampled as f64;
        let baseline_share = (self.baseline + half_line) / (totals.baseline + half_line);
        Some(self.window / totals.window / baseline_share)
    }

    /// The two-proportion z of the window's sampled share over the baseline's.
    fn z(&self, totals: &Totals) -> f64 {
        let (n1, n2) = (totals.window_sampled as f64, totals.baseline_sampled as f64);
        if n1 == 0.0 || n2 == 0.0 {
            return 0.0;
        }
        let (x1, x2) = (self.window_sampled as f64, self.baseline_sampled as f64);
        let pooled = (x1 + x2) / (n1 + n2);
        let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
        if se > 0.0 {
            (x1 / n1 - x2 / n2) / se
        } else {
            0.0
        }
    }

    fn over_represented(&self, totals: &Totals) -> bool {
        self.z(totals) >= OVER_REPRESENTED_Z
            || (totals.baseline_sampled == 0 && self.window_sampled > 0)
    }
}

fn count(value: f64) -> u64 {
    // Saturating: estimates are non-negative and far below u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rounded = value.round().max(0.0) as u64;
    rounded
}

/// Compares `window` with `baseline` (both ERROR+ lines): at most `limit` templates and
/// `limit` attribute values. `traffic`, the baseline's lines of every level, is what the
/// attribute values are compared with when the baseline has fewer than
/// [`MIN_BASELINE_ERRORS`] sampled errors.
pub fn explain(
    window: &[Line<'_>],
    baseline: &[Line<'_>],
    traffic: &[Line<'_>],
    limit: usize,
) -> Explanation {
    let totals = Totals::of(window, baseline);
    let mut miner = Miner::default();
    for line in window.iter().chain(baseline) {
        miner.add(line.message);
    }
    let mut templates: HashMap<String, Tally> = HashMap::new();
    for (side, lines) in [(Side::Window, window), (Side::Baseline, baseline)] {
        for line in lines {
            templates
                .entry(miner.template(line.message))
                .or_default()
                .add_line(side, line);
        }
    }
    let (attribute_baseline, reference) = if baseline.len() >= MIN_BASELINE_ERRORS {
        (AttributeBaseline::Errors, baseline)
    } else if !traffic.is_empty() {
        (AttributeBaseline::AllLevels, traffic)
    } else if !baseline.is_empty() {
        (AttributeBaseline::Errors, baseline)
    } else {
        (AttributeBaseline::None, baseline)
    };
    let value_totals = Totals::of(window, reference);
    let mut values: HashMap<(String, String), Tally> = HashMap::new();
    for (side, lines) in [(Side::Window, window), (Side::Baseline, reference)] {
        for line in lines {
            for pair in attribute_pairs(line.attributes) {
                values.entry(pair).or_default().add(side, line);
            }
        }
    }

    let mut patterns: Vec<(Tally, PatternChange)> = templates
        .into_iter()
        .filter_map(|(template, tally)| {
            let (example_log_id, example_ts, example_message) = tally.example.clone()?;
            Some((
                tally.clone(),
                PatternChange {
                    template,
                    window_count: count(tally.window),
                    baseline_count: count(tally.baseline),
                    lift: tally.lift(&totals),
                    new: tally.baseline_sampled == 0,
                    over_represented: tally.over_represented(&totals),
                    example_log_id,
                    example_ts,
                    example_message,
                },
            ))
        })
        .collect();
    patterns.sort_by(|(a, pa), (b, pb)| {
        pb.over_represented
            .cmp(&pa.over_represented)
            .then_with(|| {
                if pa.over_represented {
                    b.excess(&totals).total_cmp(&a.excess(&totals))
                } else {
                    b.window.total_cmp(&a.window)
                }
            })
            .then_with(|| pa.template.cmp(&pb.template))
    });

    let mut attributes: Vec<(Tally, AttributeChange)> = values
        .into_iter()
        .filter(|(_, tally)| {
            tally.window_sampled >= 2
                && if attribute_baseline == AttributeBaseline::None {
                    tally.window_sampled < value_totals.window_sampled
                } else {
                    tally.z(&value_totals) >= OVER_REPRESENTED_Z
                }
        })
        .map(|((key, value), tally)| {
            let change = AttributeChange {
                key,
                value,
                window_count: count(tally.window),
                baseline_count: count(tally.baseline),
                lift: tally.lift(&value_totals),
                new: tally.baseline_sampled == 0,
            };
            (tally, change)
        })
        .collect();
    attributes.sort_by(|(a, va), (b, vb)| {
        b.excess(&value_totals)
            .total_cmp(&a.excess(&value_totals))
            .then_with(|| (&va.key, &va.value).cmp(&(&vb.key, &vb.value)))
    });

    Explanation {
        window: SideSize {
            lines: count(totals.window),
            sampled: totals.window_sampled,
        },
        baseline: SideSize {
            lines: count(totals.baseline),
            sampled: totals.baseline_sampled,
        },
        attribute_baseline,
        patterns: patterns.into_iter().take(limit).map(|(_, p)| p).collect(),
        attributes: attributes.into_iter().take(limit).map(|(_, a)| a).collect(),
    }
}

/// The templates of `lines`, most lines first: at most `limit`.
pub fn pattern_counts(lines: &[Line<'_>], limit: usize) -> Vec<PatternCount> {
    let mut miner = Miner::default();
    for line in lines {
        miner.add(line.message);
    }
    let mut templates: HashMap<String, Tally> = HashMap::new();
    for line in lines {
        templates
            .entry(miner.template(line.message))
            .or_default()
            .add_line(Side::Window, line);
    }
    let mut counts: Vec<(f64, PatternCount)> = templates
        .into_iter()
        .filter_map(|(template, tally)| {
            let (example_log_id, example_ts, example_message) = tally.example?;
            Some((
                tally.window,
                PatternCount {
                    template,
                    count: count(tally.window),
                    sampled: tally.window_sampled,
                    example_log_id,
                    example_ts,
                    example_message,
                },
            ))
        })
        .collect();
    counts.sort_by(|(a, pa), (b, pb)| b.total_cmp(a).then_with(|| pa.template.cmp(&pb.template)));
    counts.into_iter().take(limit).map(|(_, c)| c).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Window,
    Baseline,
}

impl Tally {
    /// Counts a line of a template, keeping the first window line as its example.
    fn add_line(&mut self, side: Side, line: &Line<'_>) {
        self.add(side, line);
        if side == Side::Window && self.example.is_none() {
            let message = line.message.chars().take(EXAMPLE_CHARS).collect();
            self.example = Some((line.id, line.ts, message));
        }
    }

    fn add(&mut self, side: Side, line: &Line<'_>) {
        match side {
            Side::Window => {
                self.window += line.weight;
                self.window_sampled += 1;
            }
            Side::Baseline => {
                self.baseline += line.weight;
                self.baseline_sampled += 1;
            }
        }
    }
}

/// A line's attribute key/value pairs: top-level scalars, and the scalars of objects one
/// level down as `outer.inner`; at most [`MAX_ATTRIBUTES_PER_LINE`].
fn attribute_pairs(attributes: &Value) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let Value::Object(map) = attributes else {
        return pairs;
    };
    for (key, value) in map {
        match value {
            Value::Object(inner) => {
                for (inner_key, inner_value) in inner {
                    if let Some(text) = scalar(inner_value) {
                        pairs.push((format!("{key}.{inner_key}"), text));
                    }
                }
            }
            other => {
                if let Some(text) = scalar(other) {
                    pairs.push((key.clone(), text));
                }
            }
        }
        if pairs.len() >= MAX_ATTRIBUTES_PER_LINE {
            pairs.truncate(MAX_ATTRIBUTES_PER_LINE);
            break;
        }
    }
    pairs
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.chars().count() <= MAX_ATTRIBUTE_VALUE_CHARS => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Owned {
        id: i64,
        message: String,
        attributes: Value,
    }

    fn lines(owned: &[Owned]) -> Vec<Line<'_>> {
        owned
            .iter()
            .map(|o| Line {
                id: o.id,
                ts: DateTime::from_timestamp(1_764_547_200 + o.id, 0).unwrap_or_default(),
                message: &o.message,
                attributes: &o.attributes,
                weight: 1.0,
            })
            .collect()
    }

    /// A steady mix of three known errors from three hosts, numbers and ids varying.
    fn steady(n: i64, first_id: i64) -> Vec<Owned> {
        (0..n)
            .map(|i| {
                let id = first_id + i;
                let message = match i % 3 {
                    0 => format!("Timeout after {} ms calling payments for order {}", 100 + i, 9000 + i),
                    1 => format!("Connection reset by peer 10.0.{}.{}:5432", i % 7, i % 250),
                    _ => format!("Cache miss for key user:{} in region shard-{}", i * 7, i % 4),
                };
                let host = ["web-1", "web-2", "web-3"][(i % 3) as usize];
                Owned {
                    id,
                    message,
                    attributes: json!({"host": host, "env": "prod", "request_id": format!("r{id}")}),
                }
            })
            .collect()
    }

    #[test]
    fn a_burst_of_a_new_message_from_one_host_is_explained_first() {
        let baseline = steady(300, 1);
        let mut window = steady(30, 10_000);
        window.extend((0..120).map(|i| Owned {
            id: 20_000 + i,
            message: format!("NullPointerException in CheckoutHandler.apply at line {} (order {})", 200 + i % 3, 77_000 + i),
            attributes: json!({"host": "web-7", "env": "prod", "version": "2.4.1", "request_id": format!("q{i}")}),
        }));
        let explanation = explain(&lines(&window), &lines(&baseline), &[], 10);

        let first = &explanation.patterns[0];
        assert_eq!(
            first.template,
            "NullPointerException in CheckoutHandler.apply at line <*> (order <*>)"
        );
        assert!(first.new && first.over_represented, "{first:?}");
        assert_eq!((first.window_count, first.baseline_count), (120, 0));
        assert!(first.example_log_id >= 20_000);
        assert!(
            first
                .example_message
                .starts_with("NullPointerException in CheckoutHandler")
        );
        assert_eq!(explanation.attribute_baseline, AttributeBaseline::Errors);
        // The steady templates are one each, their numbers and ids masked.
        let steady_templates: Vec<&str> = explanation.patterns[1..]
            .iter()
            .map(|p| p.template.as_str())
            .collect();
        assert_eq!(steady_templates.len(), 3, "{steady_templates:?}");
        assert!(
            explanation.patterns[1..]
                .iter()
                .all(|p| !p.new && !p.over_represented)
        );

        let top = &explanation.attributes[0];
        assert_eq!((top.key.as_str(), top.value.as_str()), ("host", "web-7"));
        assert_eq!((top.window_count, top.baseline_count), (120, 0));
        // env=prod is on every line of both sides; request ids are on one line each.
        assert!(
            explanation
                .attributes
                .iter()
                .all(|a| a.key != "env" && a.key != "request_id")
        );
        assert_eq!(
            explanation.window,
            SideSize {
                lines: 150,
                sampled: 150
            }
        );
    }

    #[test]
    fn weights_scale_sampled_lines_to_estimates() {
        let baseline = steady(30, 1);
        let window = steady(30, 100);
        let mut weighted = lines(&window);
        for line in &mut weighted {
            line.weight = 10.0;
        }
        let explanation = explain(&weighted, &lines(&baseline), &[], 10);
        assert_eq!(
            explanation.window,
            SideSize {
                lines: 300,
                sampled: 30
            }
        );
        assert_eq!(
            explanation
                .patterns
                .iter()
                .map(|p| p.window_count)
                .sum::<u64>(),
            300
        );
        // The same mix on both sides: nothing is over-represented, no attribute stands out.
        assert!(explanation.patterns.iter().all(|p| !p.over_represented));
        assert!(
            explanation.attributes.is_empty(),
            "{:?}",
            explanation.attributes
        );
        let lift = explanation.patterns[0].lift.unwrap_or_default();
        assert!((0.7..1.3).contains(&lift), "{lift}");
    }

    #[test]
    fn with_no_baseline_errors_everything_is_new_and_limits_hold() {
        let window = steady(60, 1);
        let explanation = explain(&lines(&window), &[], &[], 2);
        assert_eq!(explanation.patterns.len(), 2);
        assert!(
            explanation
                .patterns
                .iter()
                .all(|p| p.new && p.over_represented && p.lift.is_none())
        );
        // With nothing to compare: host values are not on every line; env is.
        assert_eq!(explanation.attribute_baseline, AttributeBaseline::None);
        assert!(!explanation.attributes.is_empty());
        assert!(explanation.attributes.iter().all(|a| a.key == "host"));
        let nothing = explain(&[], &[], &[], 10);
        assert!(nothing.patterns.is_empty() && nothing.attributes.is_empty());
    }

    #[test]
    fn with_few_baseline_errors_values_are_compared_with_the_baselines_traffic() {
        // The baseline's traffic came from web-1..3; the errors come from web-9.
        let traffic = steady(300, 1);
        let window: Vec<Owned> = (0..60)
            .map(|i| Owned {
                id: 10_000 + i,
                message: format!("disk full writing segment {i}"),
                attributes: json!({"host": "web-9", "env": "prod", "retry": i % 2 == 0}),
            })
            .collect();
        let explanation = explain(&lines(&window), &[], &lines(&traffic), 10);
        assert_eq!(explanation.attribute_baseline, AttributeBaseline::AllLevels);
        let values: Vec<(&str, &str)> = explanation
            .attributes
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(values[0], ("host", "web-9"));
        assert!(!values.iter().any(|(k, _)| *k == "env"), "{values:?}");
    }

    #[test]
    fn pattern_counts_are_sorted_and_bounded() {
        let window = steady(30, 1);
        let counts = pattern_counts(&lines(&window), 2);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[0].count, 10);
        assert!(counts[0].template.contains("<*>"));
    }

    #[test]
    fn attributes_are_flattened_one_level_and_bounded() {
        let pairs = attribute_pairs(&json!({
            "host": "a", "port": 80, "ok": true, "none": null, "list": [1],
            "k8s": {"pod": "p-1", "deep": {"x": 1}}, "body": "x".repeat(500)
        }));
        let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["host", "k8s.pod", "ok", "port"]);
        let many: serde_json::Map<String, Value> =
            (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        assert_eq!(
            attribute_pairs(&Value::Object(many)).len(),
            MAX_ATTRIBUTES_PER_LINE
        );
    }
}
