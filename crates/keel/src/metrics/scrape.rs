//! Samples read at scrape time rather than kept in the registry (build info, readiness, the
//! limiter's and the verifier's counters, queue depths, the process): written after the
//! registry's own, with the same `# HELP`/`# TYPE` lines and the same label escaping.

use std::fmt::{Display, Write};

use super::registry::{escape, header};

/// The text of one scrape, in the exposition format.
#[derive(Debug, Default)]
pub struct Scrape {
    out: String,
}

impl Scrape {
    /// Starts with everything the registry holds.
    pub fn new() -> Scrape {
        Scrape {
            out: super::global().registry.render(),
        }
    }

    /// A family's `# HELP` and `# TYPE` lines; its samples follow.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) -> &mut Self {
        header(&mut self.out, name, help, kind);
        self
    }

    /// One sample: `name{label="value",…} value`, label values escaped.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_escaped_like_the_registry_s() {
        let mut s = Scrape { out: String::new() };
        s.family("t_jobs", "help", "gauge")
            .sample("t_jobs", &[("queue", "a\"b\\c\nd"), ("state", "x")], 3)
            .sample("t_up", &[], 1.5);
        let text = s.finish();
        assert_eq!(
            text,
            "# HELP t_jobs help\n# TYPE t_jobs gauge\nt_jobs{queue=\"a\\\"b\\\\c\\nd\",state=\"x\"} 3\nt_up 1.5\n"
        );
    }
}
