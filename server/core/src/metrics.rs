//! Counters and histograms in the Prometheus text format: a few atomics
//! and locks, so `/metrics` needs no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds, in seconds, shared by every duration histogram.
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Clone, Debug, Default)]
struct Series {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

/// A histogram per label set (labels as `key="value",...`).
#[derive(Debug, Default)]
pub struct Histogram {
    series: Mutex<BTreeMap<String, Series>>,
}

impl Histogram {
    pub fn observe(&self, labels: &str, seconds: f64) {
        let Ok(mut m) = self.series.lock() else {
            return;
        };
        let s = m.entry(labels.to_string()).or_insert_with(|| Series {
            buckets: vec![0; SECONDS_BUCKETS.len()],
            ..Series::default()
        });
        for (i, le) in SECONDS_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.sum += seconds;
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let Ok(m) = self.series.lock() else {
            return;
        };
        for (labels, s) in m.iter() {
            let sep = if labels.is_empty() { "" } else { "," };
            for (i, le) in SECONDS_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
        }
    }
}

/// A counter per label set.
#[derive(Debug, Default)]
pub struct Counter {
    series: Mutex<BTreeMap<String, u64>>,
}

impl Counter {
    pub fn add(&self, labels: &str, n: u64) {
        if let Ok(mut m) = self.series.lock() {
            *m.entry(labels.to_string()).or_default() += n;
        }
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        if let Ok(m) = self.series.lock() {
            if m.is_empty() {
                let _ = writeln!(out, "{name} 0");
            }
            for (labels, v) in m.iter() {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
}

/// Escapes a label value per the text format.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let h = Histogram::default();
        h.observe("route=\"/jobs\"", 0.002);
        h.observe("route=\"/jobs\"", 2.0);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help");
        assert!(out.contains("x_seconds_bucket{route=\"/jobs\",le=\"0.005\"} 1"));
        assert!(out.contains("x_seconds_bucket{route=\"/jobs\",le=\"5\"} 2"));
        assert!(out.contains("x_seconds_count{route=\"/jobs\"} 2"));
        let c = Counter::default();
        let mut out = String::new();
        c.render(&mut out, "y_total", "help");
        assert!(out.contains("y_total 0"));
        c.add(&format!("state=\"{}\"", label("a\"b")), 3);
        let mut out = String::new();
        c.render(&mut out, "y_total", "help");
        assert!(out.contains("y_total{state=\"a\\\"b\"} 3"));
    }
}
