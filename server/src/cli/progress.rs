//! Progress of running queries: one bar per query on a terminal (rows and
//! rate), plain log lines otherwise (CI logs, files).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(Clone)]
pub enum Reporter {
    Bars(MultiProgress),
    Lines,
}

impl Reporter {
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            Reporter::Bars(MultiProgress::new())
        } else {
            Reporter::Lines
        }
    }

    pub fn query(&self, name: &str) -> QueryProgress {
        match self {
            Reporter::Bars(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<20} {human_pos:>12} rows  {elapsed:>4}  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                QueryProgress {
                    name: name.to_string(),
                    bar: Some(bar),
                }
            }
            Reporter::Lines => QueryProgress {
                name: name.to_string(),
                bar: None,
            },
        }
    }
}

/// One query's progress line or bar.
#[derive(Clone)]
pub struct QueryProgress {
    name: String,
    bar: Option<ProgressBar>,
}

impl QueryProgress {
    pub fn rows(&self, n: u64) {
        match &self.bar {
            Some(b) => b.set_position(n),
            None => eprintln!("[{}] {n} rows", self.name),
        }
    }

    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => eprintln!("[{}] {msg}", self.name),
        }
    }

    pub fn finish(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(msg.to_string()),
            None => eprintln!("[{}] {msg}", self.name),
        }
    }
}
