//! Time: stored in UTC, shown in the hospital's zone. The zone is a `chrono_tz::Tz` from config
//! (default Asia/Shanghai), and every "which day is it" question goes through `HospitalClock`.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::ValidationError;

/// The hospital's time zone, for turning local dates and times into UTC instants and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HospitalZone(pub Tz);

impl Default for HospitalZone {
    fn default() -> Self {
        Self(chrono_tz::Asia::Shanghai)
    }
}

impl HospitalZone {
    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        name.parse::<Tz>()
            .map(Self)
            .map_err(|_| ValidationError::new("timezone", format!("unknown IANA zone {name:?}")))
    }

    /// The UTC instant of a local wall-clock time. China has no DST, but other zones do: an
    /// ambiguous time takes the earlier instant and a skipped one the next valid minute.
    pub fn to_utc(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let naive = date.and_time(time);
        match self.0.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            chrono::LocalResult::None => {
                let later = naive + chrono::Duration::hours(1);
                self.0.from_local_datetime(&later).earliest().expect("an hour after a gap is valid").with_timezone(&Utc)
            }
        }
    }

    /// The local date of an instant: which day it is at the hospital.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.0).date_naive()
    }

    /// An instant as the hospital shows it, RFC 3339 with the local offset.
    pub fn show(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_is_utc_plus_8() {
        let z = HospitalZone::default();
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let t = z.to_utc(d, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(t.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        assert_eq!(z.show(t), "2026-11-25T08:00:00+08:00");
        // 23:30 UTC is already the next day in Shanghai.
        let late = Utc.with_ymd_and_hms(2026, 11, 25, 23, 30, 0).unwrap();
        assert_eq!(z.local_date(late), NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert!(HospitalZone::parse("Mars/Olympus").is_err());
    }
}
