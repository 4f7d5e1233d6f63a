//! Cron expressions in UTC: 5 fields (minute hour day-of-month month day-of-week) or 6 with
//! seconds first. Each field takes `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists
//! `a,b`; months and weekdays also take names (`JAN`, `MON`); day-of-week 7 is Sunday. When both
//! day fields are restricted, a day matches either (as in classic cron).

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    day_restricted: bool,
    weekday_restricted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {reason}")]
pub struct CronError {
    pub expr: String,
    pub reason: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fail = |reason: String| CronError {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(fail(format!("expected 5 or 6 fields, found {n}"))),
        };
        let field = |name: &str, text: &str, min: u32, max: u32, names: &[&str]| {
            parse_field(text, min, max, names).map_err(|reason| fail(format!("{name}: {reason}")))
        };
        let mut weekdays = field("day of week", rest[4], 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        Ok(Cron {
            seconds: field("second", sec, 0, 59, &[])?,
            minutes: field("minute", rest[0], 0, 59, &[])?,
            hours: field("hour", rest[1], 0, 23, &[])?,
            days: field("day of month", rest[2], 1, 31, &[])?,
            months: field("month", rest[3], 1, 12, &MONTHS)?,
            weekdays,
            day_restricted: rest[2] != "*" && rest[2] != "?",
            weekday_restricted: rest[4] != "*" && rest[4] != "?",
        })
    }

    fn day_matches(&self, date: DateTime<Utc>) -> bool {
        let day = bit(&self.days, date.day());
        let weekday = bit(&self.weekdays, date.weekday().num_days_from_sunday());
        match (self.day_restricted, self.weekday_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        }
    }

    /// The first firing strictly after `after`, searching at most five years ahead.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_nanosecond(0)? + Duration::seconds(1);
        let mut day = Utc
            .with_ymd_and_hms(start.year(), start.month(), start.day(), 0, 0, 0)
            .single()?;
        for _ in 0..(366 * 5) {
            if bit(&self.months, day.month()) && self.day_matches(day) {
                let from = if day.date_naive() == start.date_naive() {
                    (start.hour(), start.minute(), start.second())
                } else {
                    (0, 0, 0)
                };
                if let Some(t) = self.first_time_in_day(day, from) {
                    return Some(t);
                }
            }
            day += Duration::days(1);
        }
        None
    }

    /// The latest firing at or before `at`, searching at most five years back.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = at.with_nanosecond(0)?;
        let mut day = Utc
            .with_ymd_and_hms(at.year(), at.month(), at.day(), 0, 0, 0)
            .single()?;
        for _ in 0..(366 * 5) {
            if bit(&self.months, day.month()) && self.day_matches(day) {
                let limit = if day.date_naive() == at.date_naive() {
                    (at.hour(), at.minute(), at.second())
                } else {
                    (23, 59, 59)
                };
                if let Some(t) = self.last_time_in_day(day, limit) {
                    return Some(t);
                }
            }
            day -= Duration::days(1);
        }
        None
    }

    fn first_time_in_day(
        &self,
        day: DateTime<Utc>,
        from: (u32, u32, u32),
    ) -> Option<DateTime<Utc>> {
        for h in (from.0..24).filter(|h| bit(&self.hours, *h)) {
            let m0 = if h == from.0 { from.1 } else { 0 };
            for m in (m0..60).filter(|m| bit(&self.minutes, *m)) {
                let s0 = if h == from.0 && m == from.1 {
                    from.2
                } else {
                    0
                };
                if let Some(s) = (s0..60).find(|s| bit(&self.seconds, *s)) {
                    return Some(day + Duration::seconds(i64::from(h * 3600 + m * 60 + s)));
                }
            }
        }
        None
    }

    fn last_time_in_day(&self, day: DateTime<Utc>, to: (u32, u32, u32)) -> Option<DateTime<Utc>> {
        for h in (0..=to.0).rev().filter(|h| bit(&self.hours, *h)) {
            let m1 = if h == to.0 { to.1 } else { 59 };
            for m in (0..=m1).rev().filter(|m| bit(&self.minutes, *m)) {
                let s1 = if h == to.0 && m == to.1 { to.2 } else { 59 };
                if let Some(s) = (0..=s1).rev().find(|s| bit(&self.seconds, *s)) {
                    return Some(day + Duration::seconds(i64::from(h * 3600 + m * 60 + s)));
                }
            }
        }
        None
    }
}

fn bit(set: &u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

fn parse_field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in {part:?}"));
        }
        let (lo, hi) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a, min, names)?, value(b, min, names)?),
                None => {
                    let v = value(range, min, names)?;
                    (v, if part.contains('/') { max } else { v })
                }
            },
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

fn value(text: &str, min: u32, names: &[&str]) -> Result<u32, String> {
    if let Ok(v) = text.parse::<u32>() {
        return Ok(v);
    }
    let upper = text.to_ascii_uppercase();
    names
        .iter()
        .position(|n| *n == upper)
        .map(|i| i as u32 + if min == 1 { 1 } else { 0 })
        .ok_or_else(|| format!("{text:?} is not a number or name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let c = Cron::parse("*/5 * * * *").unwrap();
        assert_eq!(
            c.next_after(at("2026-01-01T10:02:30Z")),
            Some(at("2026-01-01T10:05:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-01-01T10:05:00Z")),
            Some(at("2026-01-01T10:10:00Z"))
        );
        assert_eq!(
            c.latest_at_or_before(at("2026-01-01T10:07:00Z")),
            Some(at("2026-01-01T10:05:00Z"))
        );
    }

    #[test]
    fn six_fields_have_seconds() {
        let c = Cron::parse("* * * * * *").unwrap();
        assert_eq!(
            c.next_after(at("2026-01-01T10:00:00.500Z")),
            Some(at("2026-01-01T10:00:01Z"))
        );
        let c = Cron::parse("30 0 12 * * *").unwrap();
        assert_eq!(
            c.next_after(at("2026-01-01T12:00:30Z")),
            Some(at("2026-01-02T12:00:30Z"))
        );
    }

    #[test]
    fn builtins_and_names() {
        let daily = Cron::parse("0 2 * * *").unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-01T02:00:00Z")),
            Some(at("2026-01-02T02:00:00Z"))
        );
        let weekly = Cron::parse("0 3 * * 0").unwrap();
        // 2026-01-04 is a Sunday.
        assert_eq!(
            weekly.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-04T03:00:00Z"))
        );
        assert_eq!(Cron::parse("0 3 * * SUN").unwrap(), weekly);
        assert_eq!(Cron::parse("0 3 * * 7").unwrap(), weekly);
        let leap = Cron::parse("0 0 29 FEB *").unwrap();
        assert_eq!(
            leap.next_after(at("2026-03-01T00:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn day_fields_are_ored_when_both_set() {
        let c = Cron::parse("0 0 1 * MON").unwrap();
        // 2026-01-05 is a Monday, before Feb 1.
        assert_eq!(
            c.next_after(at("2026-01-02T00:00:00Z")),
            Some(at("2026-01-05T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
            "* * * * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert!(Cron::parse("0 0 31 2 *")
            .unwrap()
            .next_after(at("2026-01-01T00:00:00Z"))
            .is_none());
    }
}
