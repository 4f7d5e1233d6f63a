//! Typed reads of single variables; each bad value becomes a problem naming its variable.

use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::problems::Problems;
use super::source::Source;

pub(crate) struct Reader<'a> {
    pub src: &'a Source,
    pub problems: Problems,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a Source) -> Self {
        Self {
            src,
            problems: Problems::default(),
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.src.get(name).map(str::to_string)
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.src
            .get(name)
            .map(|v| SecretString::from(v.to_string()))
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.src
            .get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.src.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(_) => {
                self.problems.push(name, "must be true or false");
                default
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn number<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(raw) = self.src.get(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problems
                    .push(name, format!("must be a whole number from {min} to {max}"));
                default
            }
        }
    }

    pub fn seconds(&mut self, name: &str, default: u64, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.number(name, default, min, max))
    }

    /// One of `choices`; the first is the default when unset.
    pub fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(raw) = self.src.get(name) else {
            return default;
        };
        let lowered = raw.to_ascii_lowercase();
        match choices.iter().find(|(k, _)| *k == lowered) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
                self.problems
                    .push(name, format!("must be one of {}", names.join(", ")));
                default
            }
        }
    }
}
