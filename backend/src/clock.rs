//! Time, behind a trait so tests can fix it.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use shared::Date;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Now.
    fn now(&self) -> SystemTime;

    /// The latest calendar date anywhere on Earth right now (UTC+14).
    ///
    /// The browser checks birth dates against the patient's own local date; the
    /// server does not know the patient's time zone, so it must not refuse a date
    /// that is already "today" somewhere.
    fn latest_date_on_earth(&self) -> Date {
        date_at_offset(self.now(), 14 * 3600)
    }

    /// The earliest calendar date anywhere on Earth right now (UTC−12): with
    /// [`Clock::latest_date_on_earth`], the two dates a patient's `today()` may be.
    fn earliest_date_on_earth(&self) -> Date {
        date_at_offset(self.now(), -12 * 3600)
    }
}

/// The calendar date at `now` in the zone `offset` seconds east of UTC.
fn date_at_offset(now: SystemTime, offset: i64) -> Date {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    };
    Date::from_days_since_epoch((secs + offset).div_euclid(86_400))
}

/// `now` as a FHIR `instant` in UTC, to the millisecond: `2026-11-29T22:06:07.123Z`.
pub fn fhir_instant(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let date = Date::from_days_since_epoch(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_millis()
    )
}

/// Unix seconds of a FHIR instant as [`fhir_instant`] writes it (UTC); `None`
/// for anything else.
pub fn instant_secs(text: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = shared::date::days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?)
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct Fixed(SystemTime);
    impl Clock for Fixed {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    #[test]
    fn instants_are_utc_to_the_millisecond() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_946_399_123);
        assert_eq!(fhir_instant(t), "2026-11-29T09:59:59.123Z");
        assert_eq!(fhir_instant(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_latest_date_is_ahead_of_utc_from_10_in_the_morning() {
        // 2026-11-29T09:59:59Z is 23:59:59 on the 29th at UTC+14.
        let nine_59 = UNIX_EPOCH + Duration::from_secs(1_795_946_399);
        assert_eq!(
            Fixed(nine_59).latest_date_on_earth().to_string(),
            "2026-11-29"
        );
        let ten = nine_59 + Duration::from_secs(1);
        assert_eq!(Fixed(ten).latest_date_on_earth().to_string(), "2026-11-30");
        // 10:00 UTC is 22:00 the day before at UTC−12; noon UTC starts the day there.
        assert_eq!(
            Fixed(ten).earliest_date_on_earth().to_string(),
            "2026-11-28"
        );
        let noon = ten + Duration::from_secs(2 * 3600);
        assert_eq!(
            Fixed(noon).earliest_date_on_earth().to_string(),
            "2026-11-29"
        );
    }

    #[test]
    fn instants_read_back_as_unix_seconds() {
        for secs in [0, 951_782_400, 1_796_000_000, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(instant_secs(&fhir_instant(t)), i64::try_from(secs).ok());
        }
        assert_eq!(instant_secs("nonsense"), None);
        assert_eq!(instant_secs("2020-01-0é"), None);
    }
}
