//! A calendar date (proleptic Gregorian), as FHIR's `date` with full precision.

use std::fmt;

/// A valid calendar date. Only [`Date::parse`] and [`Date::new`] build one, so a
/// `Date` that exists is a real day (no 30 February).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a text is not a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateError {
    /// Not of the shape `YYYY-MM-DD`.
    Format,
    /// The shape is right, but the day does not exist (for example 2023-02-29).
    NoSuchDay,
}

impl Date {
    /// The date for `year`, `month` (1-12) and `day`, if that day exists.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, DateError> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(DateError::NoSuchDay);
        }
        Ok(Self { year, month, day })
    }

    /// Parses FHIR's full-precision date form, `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Self, DateError> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(DateError::Format);
        }
        let year = digits(&bytes[0..4])?;
        let month = digits(&bytes[5..7])?;
        let day = digits(&bytes[8..10])?;
        // Both fit: at most 2 digits for month and day, 4 for year.
        Self::new(year, month as u8, day as u8)
    }

    /// The date `days` days after 1970-01-01 (negative: before it).
    ///
    /// Howard Hinnant's `civil_from_days`; exact for every day this type can hold.
    pub fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Self { year, month, day }
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1-12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1-31.
    pub fn day(self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Joins a date typed as three inputs (year, month, day) into `YYYY-MM-DD`.
///
/// Anything other than a 4-digit year and a 1- or 2-digit month and day stays
/// malformed on purpose, so that [`Date::parse`] reports it as not a date rather
/// than, say, reading "80" as the year 0080. All three empty gives "".
pub fn compose_date(year: &str, month: &str, day: &str) -> String {
    let (year, month, day) = (year.trim(), month.trim(), day.trim());
    if year.is_empty() && month.is_empty() && day.is_empty() {
        return String::new();
    }
    let number = |s: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    match (
        number(year, 4..=4),
        number(month, 1..=2),
        number(day, 1..=2),
    ) {
        (Some(y), Some(m), Some(d)) => format!("{y:04}-{m:02}-{d:02}"),
        _ => format!("{year}?{month}?{day}"),
    }
}

fn digits(bytes: &[u8]) -> Result<u16, DateError> {
    bytes.iter().try_fold(0u16, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + u16::from(b - b'0'))
        } else {
            Err(DateError::Format)
        }
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`): the inverse of [`Date::from_days_since_epoch`], for any
/// year, month 1–12 and day (a day past the month's end runs on).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_inverts_from_days_since_epoch() {
        for days in (-719_162..2_932_897).step_by(997).chain(-400..400) {
            let d = Date::from_days_since_epoch(days);
            let back = days_from_civil(
                i64::from(d.year()),
                i64::from(d.month()),
                i64::from(d.day()),
            );
            assert_eq!(back, days, "{d}");
        }
    }

    #[test]
    fn parse_accepts_real_days_and_rejects_the_rest() {
        type Ymd = (u16, u8, u8);
        let cases: &[(&str, Result<Ymd, DateError>)] = &[
            ("1980-02-29", Ok((1980, 2, 29))),
            ("2000-02-29", Ok((2000, 2, 29))),
            ("1900-02-29", Err(DateError::NoSuchDay)),
            ("2023-02-29", Err(DateError::NoSuchDay)),
            ("2024-04-31", Err(DateError::NoSuchDay)),
            ("2024-13-01", Err(DateError::NoSuchDay)),
            ("2024-00-10", Err(DateError::NoSuchDay)),
            ("2024-01-00", Err(DateError::NoSuchDay)),
            ("2024-12-31", Ok((2024, 12, 31))),
            ("2024-1-01", Err(DateError::Format)),
            ("24-01-01", Err(DateError::Format)),
            ("2024/01/01", Err(DateError::Format)),
            ("2024-01-0a", Err(DateError::Format)),
            ("", Err(DateError::Format)),
            ("2024-01-01T00:00", Err(DateError::Format)),
            ("２０２４-01-01", Err(DateError::Format)),
        ];
        for (text, expected) in cases {
            let got = Date::parse(text).map(|d| (d.year(), d.month(), d.day()));
            assert_eq!(&got, expected, "parsing {text:?}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for text in ["0001-01-01", "1900-01-01", "1980-02-29", "9999-12-31"] {
            assert_eq!(Date::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn days_since_epoch_match_known_dates() {
        let cases = [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (11_016, "2000-02-29"),
            (19_782, "2024-02-29"),
            (20_786, "2026-11-29"),
            (-25_567, "1900-01-01"),
        ];
        for (days, text) in cases {
            assert_eq!(
                Date::from_days_since_epoch(days).to_string(),
                text,
                "day {days}"
            );
        }
    }

    #[test]
    fn three_inputs_compose_to_a_fhir_date_or_stay_malformed() {
        let cases = [
            (("1980", "2", "29"), "1980-02-29"),
            (("1980", "02", "09"), "1980-02-09"),
            ((" 1980 ", " 2", "9 "), "1980-02-09"),
            (("", "", ""), ""),
            (("80", "2", "29"), "80?2?29"),
            (("1980", "", "29"), "1980??29"),
            (("1980", "1x", "2"), "1980?1x?2"),
            (("1980", "123", "2"), "1980?123?2"),
            (("19800", "1", "2"), "19800?1?2"),
        ];
        for ((y, m, d), expected) in cases {
            assert_eq!(compose_date(y, m, d), expected, "{y} {m} {d}");
        }
        assert_eq!(
            Date::parse(&compose_date("1980", "2", "29")).map(|d| d.day()),
            Ok(29)
        );
        assert_eq!(
            Date::parse(&compose_date("80", "2", "29")),
            Err(DateError::Format)
        );
    }

    #[test]
    fn dates_order_by_time() {
        let a = Date::parse("1999-12-31").unwrap();
        let b = Date::parse("2000-01-01").unwrap();
        assert!(a < b);
    }
}
