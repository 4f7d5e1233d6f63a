//! Cron expressions, evaluated in a time zone (UTC unless a schedule names an IANA zone), with
//! the `croner` crate: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds
//! first; `*`, numbers, ranges, steps, lists, month and weekday names, day-of-week 7 for Sunday,
//! `L` (last day of the month, or `5L` the last Friday), `W` (the weekday nearest a day), `#`
//! (`MON#2`, the second Monday) and the nicknames `@yearly`, `@monthly`, `@weekly`, `@daily`,
//! `@midnight` and `@hourly`.
//!
//! The two day fields combine as in Vixie cron: when both are restricted a day matches either;
//! a field that starts with `*` (such as `*/2`) counts as unrestricted, so `0 0 */2 * MON` fires
//! on odd days that are Mondays.
//!
//! Firings are instants: a time the clock skips when daylight saving starts fires at the first
//! instant after the gap, and a time it repeats when daylight saving ends fires once.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Clone)]
pub struct Cron {
    pattern: croner::Cron,
    zone: Tz,
}

impl std::fmt::Debug for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cron({:?} in {})",
            self.pattern.as_str(),
            self.zone.name()
        )
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.zone == other.zone
    }
}

impl Eq for Cron {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {reason}")]
pub struct CronError {
    pub expr: String,
    pub reason: String,
}

impl Cron {
    /// `expr` in UTC.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fail = |reason: String| CronError {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let day_fields = match fields.len() {
            1 if expr.trim_start().starts_with('@') => None,
            5 => Some((fields[2], fields[4])),
            6 => Some((fields[3], fields[5])),
            n => return Err(fail(format!("expected 5 or 6 fields, found {n}"))),
        };
        // Vixie cron: a day field whose text starts with `*` makes the two combine with AND
        // (`*` alone leaves the other field to decide either way).
        let starred = |field: &str| field.starts_with('*') && field != "*";
        let and = day_fields.is_some_and(|(dom, dow)| starred(dom) || starred(dow));
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .dom_and_dow(and)
            .build();
        // Vixie cron's `@midnight` is `@daily`.
        let text = if expr.trim().eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            expr
        };
        let pattern = parser
            .parse(text)
            .map_err(|e| fail(e.to_string().trim_end_matches('.').to_string()))?;
        Ok(Cron {
            pattern,
            zone: Tz::UTC,
        })
    }

    /// This expression evaluated on the wall clock of `zone`, an IANA name (`Europe/Berlin`).
    pub fn in_zone(mut self, zone: &str) -> Result<Cron, CronError> {
        self.zone = zone.parse().map_err(|_| CronError {
            expr: self.pattern.as_str().to_string(),
            reason: format!("unknown time zone {zone:?} (an IANA name such as Europe/Berlin)"),
        })?;
        Ok(self)
    }

    /// The time zone the expression is read in.
    pub fn zone(&self) -> &'static str {
        self.zone.name()
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.pattern
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest firing at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.trunc_subsecs(0).with_timezone(&self.zone);
        self.pattern
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}
