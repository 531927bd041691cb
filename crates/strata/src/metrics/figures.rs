//! [`Figures`]: the samples of one scrape, grouped in families, and their encoding.

use serde::{Deserialize, Serialize};

use crate::Message;

/// Ask a process for its [`Figures`]: the process directory answers it (what
/// `strata network` and `strata status -l` send).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "strata.metrics.Query")]
pub struct FiguresQuery;

/// Whether a family counts up from the start (a counter) or tells a level now (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Only grows; encoded with the `_total` suffix.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One sample's value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A count.
    Count(u64),
    /// A measure (seconds, a flag as 0 or 1).
    Real(f64),
}

impl Value {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Count(n) => n as f64,
            Value::Real(x) => x,
        }
    }
}

/// One sample: its labels (name, value) and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The labels, in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
}

/// A family: samples of one name and kind, told apart by their labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// The name, without the `_total` a counter gets when encoded.
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Counter or gauge.
    pub kind: Kind,
    /// The samples.
    pub samples: Vec<Sample>,
}

/// The figures of one process at one moment: what `/metrics` encodes, and what the
/// process directory answers [`FiguresQuery`] with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.metrics.Figures")]
pub struct Figures {
    /// The process's id.
    pub pid: u32,
    /// The families, sorted by name; each one's samples sorted by their labels.
    pub families: Vec<Family>,
}

impl Figures {
    /// No figures yet, for this process.
    pub fn new() -> Self {
        Figures {
            pid: std::process::id(),
            families: Vec::new(),
        }
    }

    /// Adds a counter sample to the family `name` (made with `help` if new).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.add(name, help, Kind::Counter, labels, Value::Count(value));
    }

    /// Adds a gauge sample to the family `name` (made with `help` if new).
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: Value) {
        self.add(name, help, Kind::Gauge, labels, value);
    }

    fn add(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], value: Value) {
        let family = match self.families.iter().position(|f| f.name == name) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.last_mut().expect("just pushed")
            }
        };
        family.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }

    /// Sorts the families by name and their samples by labels (a stable text to compare).
    pub(crate) fn sort(&mut self) {
        self.families.sort_by(|a, b| a.name.cmp(&b.name));
        for f in &mut self.families {
            f.samples.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
    }

    /// The family named `name` (without a counter's `_total`).
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The value of the sample of `name` whose labels include every `(label, value)` of
    /// `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.family(name)?;
        family
            .samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value.as_f64())
    }

    /// Encodes them in the Prometheus text format (version 0.0.4), through the
    /// `prometheus-client` crate.
    #[cfg(feature = "metrics")]
    pub fn to_prometheus_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Snapshot(self.clone())));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// The figures as the crate's collector: read once, when the registry is encoded.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Snapshot(Figures);

#[cfg(feature = "metrics")]
impl prometheus_client::collector::Collector for Snapshot {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        for family in &self.0.families {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
            };
            let mut descriptor =
                encoder.encode_descriptor(&family.name, &family.help, None, kind)?;
            for sample in &family.samples {
                let metric = descriptor.encode_family(&sample.labels)?;
                match (family.kind, sample.value) {
                    (Kind::Counter, Value::Count(n)) => ConstCounter::new(n).encode(metric)?,
                    (Kind::Counter, Value::Real(x)) => ConstCounter::new(x).encode(metric)?,
                    (Kind::Gauge, Value::Count(n)) => {
                        ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(metric)?
                    }
                    (Kind::Gauge, Value::Real(x)) => ConstGauge::new(x).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn families_encode_as_prometheus_text() {
        let mut f = Figures::new();
        f.counter("strata_test_done", "Things done", &[("object", "<1@2>")], 3);
        f.counter("strata_test_done", "Things done", &[("object", "<0@2>")], 4);
        f.gauge("strata_test_level", "A level", &[], Value::Real(0.25));
        f.sort();
        let text = f.to_prometheus_text();
        assert!(
            text.contains("# TYPE strata_test_done_total counter"),
            "{text}"
        );
        assert!(
            text.contains("strata_test_done_total{object=\"<0@2>\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("strata_test_done_total{object=\"<1@2>\"} 3"),
            "{text}"
        );
        assert!(text.contains("# TYPE strata_test_level gauge"), "{text}");
        assert!(text.contains("strata_test_level 0.25"), "{text}");
        assert_eq!(
            f.value("strata_test_done", &[("object", "<1@2>")]),
            Some(3.0)
        );
    }
}
