//! Dates, date-times and times as FHIRPath compares and adds them: each value
//! keeps the precision it was written with (`@2024`, `@2024-03-05T10:30`) and,
//! for a date-time, its time zone; values at different precisions compare only
//! as far as they are known (`@2024-03 < @2024-03-05` is empty).

use std::cmp::Ordering;

/// A parsed date, date-time or time: components down to its precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moment {
    /// year, month, day, hour, minute, second, millisecond.
    pub(crate) parts: [i64; 7],
    /// How many of `parts` are known (1 = year … 7 = millisecond; a time
    /// starts at the hour, so its precision counts from 4).
    pub(crate) precision: usize,
    /// Minutes east of UTC, when a zone was given.
    pub(crate) zone: Option<i64>,
}

fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `hh(:mm(:ss(.fff)?)?)?` into parts 3.. of `m`.
fn time_into(text: &str, m: &mut Moment) -> Option<()> {
    let (hms, frac) = text
        .split_once('.')
        .map_or((text, None), |(a, b)| (a, Some(b)));
    for (i, piece) in hms.split(':').enumerate() {
        if i > 2 {
            return None;
        }
        m.parts[3 + i] = digits(piece, 2)?;
        m.precision = 4 + i;
    }
    if let Some(frac) = frac {
        if m.precision != 6 || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let ms: String = format!("{frac:0<3}").chars().take(3).collect();
        m.parts[6] = digits(&ms, 3)?;
        m.precision = 7;
    }
    (m.parts[3] < 24 && m.parts[4] < 60 && m.parts[5] < 60).then_some(())
}

/// A date (`2024-03-05`, `2024`), with `time` a date-time's rest after `T`.
pub(crate) fn parse_date_time(text: &str) -> Option<Moment> {
    let mut m = Moment {
        parts: [0, 1, 1, 0, 0, 0, 0],
        precision: 0,
        zone: None,
    };
    let (date, time) = text
        .split_once('T')
        .map_or((text, None), |(d, t)| (d, Some(t)));
    for (i, piece) in date.split('-').enumerate() {
        if i > 2 {
            return None;
        }
        m.parts[i] = digits(piece, if i == 0 { 4 } else { 2 })?;
        m.precision = i + 1;
    }
    if !(1..=12).contains(&m.parts[1])
        || m.parts[2] < 1
        || m.parts[2] > days_in(m.parts[0], m.parts[1])
    {
        return None;
    }
    if let Some(time) = time.filter(|t| !t.is_empty()) {
        if m.precision < 3 {
            return None;
        }
        let (clock, zone) = split_zone(time)?;
        time_into(clock, &mut m)?;
        m.zone = zone;
    }
    Some(m)
}

/// A time of day (`10:30`, `10:30:00.000`), no zone.
pub(crate) fn parse_time(text: &str) -> Option<Moment> {
    let mut m = Moment {
        parts: [0, 1, 1, 0, 0, 0, 0],
        precision: 0,
        zone: None,
    };
    time_into(text, &mut m)?;
    Some(m)
}

fn split_zone(time: &str) -> Option<(&str, Option<i64>)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, Some(0)));
    }
    match time.rfind(['+', '-']) {
        Some(at) => {
            let (clock, zone) = time.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            Some((clock, Some(sign * (digits(h, 2)? * 60 + digits(m, 2)?))))
        }
        None => Some((time, None)),
    }
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in(y: i64, m: i64) -> i64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let d = crate::date::Date::from_days_since_epoch(days);
    (
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    )
}

impl Moment {
    /// Milliseconds since the epoch of the known parts (unknown ones at their start).
    fn millis(&self) -> i64 {
        let [y, mo, d, h, mi, s, ms] = self.parts;
        ((crate::date::days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms
    }

    fn from_millis(total: i64, like: &Moment) -> Moment {
        let days = total.div_euclid(86_400_000);
        let rest = total.rem_euclid(86_400_000);
        let (y, mo, d) = civil_from_days(days);
        Moment {
            parts: [
                y,
                mo,
                d,
                rest / 3_600_000,
                rest / 60_000 % 60,
                rest / 1000 % 60,
                rest % 1000,
            ],
            ..*like
        }
    }

    /// In UTC, when it has a zone and a time.
    fn utc(&self) -> Moment {
        match self.zone {
            Some(z) if self.precision >= 4 => {
                let mut m = Moment::from_millis(self.millis() - z * 60_000, self);
                m.zone = Some(0);
                m
            }
            _ => *self,
        }
    }
}

/// The order of two moments, none where their precisions leave it unknown
/// (seconds and milliseconds count as one precision: `10:30:00 = 10:30:00.0`).
pub(crate) fn compare(a: &Moment, b: &Moment) -> Option<Ordering> {
    if a.zone.is_some() != b.zone.is_some() && a.precision >= 4 && b.precision >= 4 {
        return None;
    }
    let (a, b) = (a.utc(), b.utc());
    let level = |p: usize| if p == 7 { 6 } else { p };
    let (pa, pb) = (level(a.precision), level(b.precision));
    for i in 0..pa.min(pb) {
        let (x, y) = if i == 5 {
            (
                a.parts[5] * 1000 + a.parts[6],
                b.parts[5] * 1000 + b.parts[6],
            )
        } else {
            (a.parts[i], b.parts[i])
        };
        match x.cmp(&y) {
            Ordering::Equal => {}
            other => return Some(other),
        }
    }
    (pa == pb).then_some(Ordering::Equal)
}

/// `m` plus `amount` of `unit` (a calendar word or a UCUM time unit); none for
/// a unit that is not a time span a date can add (`'mo'`, `'a'`, `'cm'`).
pub(crate) fn add(m: &Moment, amount: f64, unit: &str) -> Option<Moment> {
    let n = amount.trunc() as i64;
    let ms = match unit {
        "year" | "years" => return Some(add_months(m, n * 12)),
        "month" | "months" => return Some(add_months(m, n)),
        "week" | "weeks" | "wk" => n * 7 * 86_400_000,
        "day" | "days" | "d" => n * 86_400_000,
        "hour" | "hours" | "h" => n * 3_600_000,
        "minute" | "minutes" | "min" => n * 60_000,
        "second" | "seconds" | "s" => n * 1000,
        "millisecond" | "milliseconds" | "ms" => n,
        _ => return None,
    };
    // A date adds whole days only.
    let ms = if m.precision <= 3 {
        ms - ms % 86_400_000
    } else {
        ms
    };
    if m.precision < 3 {
        // A year or year-month adds whole years or months only.
        return Some(*m);
    }
    Some(Moment::from_millis(m.millis() + ms, m))
}

fn add_months(m: &Moment, n: i64) -> Moment {
    let total = m.parts[0] * 12 + (m.parts[1] - 1) + n;
    let mut out = *m;
    out.parts[0] = total.div_euclid(12);
    out.parts[1] = total.rem_euclid(12) + 1;
    out.parts[2] = out.parts[2].min(days_in(out.parts[0], out.parts[1]));
    out
}

/// The moment as FHIRPath writes it (without `@`), at its own precision; a
/// time (`time`) from the hour on.
pub(crate) fn format(m: &Moment, time: bool) -> String {
    let [y, mo, d, h, mi, s, ms] = m.parts;
    let mut out = String::new();
    if !time {
        out.push_str(&format!("{y:04}"));
        if m.precision >= 2 {
            out.push_str(&format!("-{mo:02}"));
        }
        if m.precision >= 3 {
            out.push_str(&format!("-{d:02}"));
        }
        if m.precision >= 4 {
            out.push('T');
        }
    }
    if m.precision >= 4 {
        out.push_str(&format!("{h:02}"));
    }
    if m.precision >= 5 {
        out.push_str(&format!(":{mi:02}"));
    }
    if m.precision >= 6 {
        out.push_str(&format!(":{s:02}"));
    }
    if m.precision >= 7 {
        out.push_str(&format!(".{ms:03}"));
    }
    if let Some(z) = m.zone.filter(|_| m.precision >= 4) {
        if z == 0 {
            out.push('Z');
        } else {
            let sign = if z < 0 { '-' } else { '+' };
            out.push_str(&format!("{sign}{:02}:{:02}", z.abs() / 60, z.abs() % 60));
        }
    }
    out
}

#[cfg(feature = "launch-context")]
/// `lowBoundary(digits)` (or, `high`, `highBoundary`) of a moment: its unknown
/// parts at their least (greatest) value, to the precision `digits` gives
/// (4 a year … 17 milliseconds; for a time 2 an hour … 9 milliseconds), a
/// date-time without a zone at the zone that makes it earliest (latest).
pub(crate) fn boundary(m: &Moment, time: bool, high: bool, digits: Option<i64>) -> Option<Moment> {
    let levels: &[(i64, usize)] = if time {
        &[(2, 4), (4, 5), (6, 6), (9, 7)]
    } else {
        &[(4, 1), (6, 2), (8, 3), (10, 4), (12, 5), (14, 6), (17, 7)]
    };
    let precision = match digits {
        None => 7,
        Some(d) => levels.iter().find(|(n, _)| *n == d)?.1,
    };
    let mut out = *m;
    // A date-time to the hour (`T08`, not a FHIR dateTime) is read as `T08:00`.
    let known = if !time && m.precision == 4 {
        5
    } else {
        m.precision
    };
    for i in known..7 {
        out.parts[i] = match (i, high) {
            (1, false) | (2, false) => 1,
            (_, false) => 0,
            (1, true) => 12,
            (2, true) => days_in(out.parts[0], out.parts[1]),
            (3, true) => 23,
            (4 | 5, true) => 59,
            (_, true) => 999,
        };
    }
    out.precision = precision;
    if !time && precision >= 4 && out.zone.is_none() {
        out.zone = Some(if high { -12 * 60 } else { 14 * 60 });
    }
    Some(out)
}
