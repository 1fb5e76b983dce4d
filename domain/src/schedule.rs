//! Doctor schedules (BOOK-1): a session is one doctor on one date in one period; it is split into
//! time segments, each with its own quota. A slot, as the API shows it, is a segment with the
//! places left in it; `SlotId` names it as `<session id>.<segment index>`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::time::HospitalZone;
use crate::{DepartmentId, DoctorId, Fen, SessionId, ValidationError};

/// 上午 / 下午 / 夜间.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Morning,
    Afternoon,
    Evening,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Morning, Period::Afternoon, Period::Evening];
    pub fn label(self) -> &'static str {
        match self {
            Period::Morning => "上午",
            Period::Afternoon => "下午",
            Period::Evening => "夜间",
        }
    }
}

/// A time range inside a session with its own quota (分时段).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    #[schema(value_type = String, example = "08:00:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "08:30:00")]
    pub end: NaiveTime,
    pub quota: u32,
}

/// Whether a session can be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Open,
    /// 停诊: cancelled by the hospital.
    Stopped,
}

/// One doctor, one date, one period (出诊时段).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClinicSession {
    pub id: SessionId,
    pub doctor_id: DoctorId,
    pub department_id: DepartmentId,
    /// The local date at the hospital.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub period: Period,
    pub segments: Vec<Segment>,
    pub fee: Fen,
    /// When the slots become bookable (放号时间), UTC.
    pub release_at: DateTime<Utc>,
    pub status: SessionStatus,
}

impl ClinicSession {
    /// Checks the invariants staff input must keep: segments in order, not overlapping, each
    /// non-empty in time.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.segments.is_empty() {
            return Err(ValidationError::new("segments", "a session needs at least one segment"));
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.start >= s.end {
                return Err(ValidationError::new("segments", format!("segment {i} ends before it starts")));
            }
            if i > 0 && self.segments[i - 1].end > s.start {
                return Err(ValidationError::new("segments", format!("segment {i} overlaps the one before")));
            }
        }
        Ok(())
    }

    pub fn total_quota(&self) -> u32 {
        self.segments.iter().map(|s| s.quota).sum()
    }

    pub fn slot_id(&self, segment: u16) -> SlotId {
        SlotId { session_id: self.id, segment }
    }

    /// When segment `segment` ends (`None`: the session's last one, its end), in UTC; `None` for
    /// a segment it does not have.
    pub fn segment_end(&self, segment: Option<u16>, zone: &HospitalZone) -> Option<DateTime<Utc>> {
        let s = match segment {
            Some(i) => self.segments.get(usize::from(i))?,
            None => self.segments.iter().max_by_key(|s| s.end)?,
        };
        Some(zone.to_utc(self.date, s.end))
    }

    /// When booking into `segment` closes by `close` (`None`: never, a time too far to reckon).
    fn closes_at(&self, segment: &Segment, zone: &HospitalZone, close: BookingClose) -> Option<DateTime<Utc>> {
        match close.before_start {
            Some(before) => {
                zone.to_utc(self.date, segment.start).checked_sub_signed(chrono::Duration::from_std(before).ok()?)
            }
            None => {
                zone.to_utc(self.date, segment.end).checked_add_signed(chrono::Duration::from_std(close.late).ok()?)
            }
        }
    }

    /// The first segment still open for booking at `now` (the number of segments when none is):
    /// a segment closes as `close` says (after its end, or ahead of its start), and a session of
    /// an earlier day than the hospital's today is closed whatever the hour (a place taken there
    /// would be for a clinic that is over). Segments are in time order (`validate`), so the closed
    /// ones come first.
    pub fn open_from(&self, zone: &HospitalZone, close: BookingClose, now: DateTime<Utc>) -> usize {
        let today = zone.local_date(now);
        if self.date < today {
            return self.segments.len();
        }
        // A later day's segments are all to come (the booking storms' case: no more work), unless
        // booking closes ahead of a start, which for an early slot may be today.
        if self.date > today && close.before_start.is_none() {
            return 0;
        }
        let open = |s: &Segment| self.closes_at(s, zone, close).is_none_or(|closes| now < closes);
        self.segments.iter().position(open).unwrap_or(self.segments.len())
    }

    /// When booking next closes in this session after `now`: when its first segment still open
    /// closes, or at the end of the session's day if a grace runs past it (the day's end closes a
    /// session, `open_from`); `None` once every segment has closed. The time the session's places
    /// are published again with that segment closed (BOOK-2).
    pub fn next_closing(&self, zone: &HospitalZone, close: BookingClose, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let segment = self.segments.get(self.open_from(zone, close, now))?;
        let day_ends = zone.to_utc(self.date.succ_opt()?, NaiveTime::MIN);
        Some(self.closes_at(segment, zone, close).map_or(day_ends, |t| t.min(day_ends)))
    }

    /// Whether booking into segment `segment` (`None`: joining the session's line, open while its
    /// last segment is) has closed at `now` (`open_from`).
    pub fn booking_closed(
        &self,
        segment: Option<u16>,
        zone: &HospitalZone,
        close: BookingClose,
        now: DateTime<Utc>,
    ) -> bool {
        let from = self.open_from(zone, close, now);
        match segment {
            // A segment it does not have is not closed here (the booking answers no_such_slot).
            Some(i) => usize::from(i) < from,
            None => from == self.segments.len(),
        }
    }
}

/// When booking into a segment closes: `late` after the segment ends (0: at its end), or, for a
/// hospital that stops taking bookings some time before each slot begins (the desk needs the
/// list), `before_start` ahead of its start, which then decides alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookingClose {
    pub late: std::time::Duration,
    pub before_start: Option<std::time::Duration>,
}

impl BookingClose {
    /// Closing `late` after each segment's end.
    pub fn after_end(late: std::time::Duration) -> Self {
        Self { late, before_start: None }
    }
}

/// A bookable segment of a session as clients name it: `<session uuid>.<segment index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct SlotId {
    pub session_id: SessionId,
    pub segment: u16,
}

impl SlotId {
    /// `<session uuid>.<segment>` written into `buf` (36 for the uuid, a dot, at most 5 digits):
    /// the text of both `Display` and `Serialize`, on the stack (every appointment row, live
    /// event and answer carries a slot id; `to_string` cost an allocation each).
    fn text<'b>(&self, buf: &'b mut [u8; 42]) -> &'b str {
        use std::io::Write;
        self.session_id.0.hyphenated().encode_lower(&mut buf[..36]);
        buf[36] = b'.';
        let mut rest = &mut buf[37..];
        write!(rest, "{}", self.segment).expect("a u16 fits in 5 bytes");
        let len = 42 - rest.len();
        std::str::from_utf8(&buf[..len]).expect("ASCII")
    }
}

impl Serialize for SlotId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text(&mut [0u8; 42]))
    }
}

impl utoipa::PartialSchema for SlotId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("<session id>.<segment index>"))
            .examples(["01935c1e-7f0a-7c4e-9a55-0d3c2b1a0f00.0"])
            .into()
    }
}
impl utoipa::ToSchema for SlotId {}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text(&mut [0u8; 42]))
    }
}

impl FromStr for SlotId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValidationError::new("slot_id", "must look like <session id>.<segment number>");
        let (sess, seg) = s.trim().rsplit_once('.').ok_or_else(err)?;
        Ok(SlotId { session_id: SessionId::parse(sess).map_err(|_| err())?, segment: seg.parse().map_err(|_| err())? })
    }
}
impl TryFrom<String> for SlotId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<SlotId> for String {
    fn from(s: SlotId) -> String {
        s.to_string()
    }
}

/// Splits `start..end` into segments of `minutes` each with `quota` places; the last one may be
/// shorter. Used by schedule templates and the demo data.
pub fn split_segments(start: NaiveTime, end: NaiveTime, minutes: i64, quota: u32) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        let next = (t + chrono::Duration::minutes(minutes)).min(end);
        // NaiveTime wraps at midnight; stop rather than loop.
        if next <= t {
            break;
        }
        out.push(Segment { start: t, end: next, quota });
        t = next;
    }
    out
}

/// One line of a weekly schedule template (排班模板): on `weekday` (1 = Monday ... 7 = Sunday), a
/// session in `period` from `start` to `end`, cut into segments of `segment_minutes` with
/// `quota` places each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateLine {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u32,
    pub period: Period,
    #[schema(value_type = String, example = "08:00:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "12:00:00")]
    pub end: NaiveTime,
    pub segment_minutes: i64,
    pub quota: u32,
}

/// A weekly schedule template: its lines, the fee of every session, and when each session's
/// slots are released (放号): `release_days_before` days ahead at `release_time`, local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyTemplate {
    pub lines: Vec<TemplateLine>,
    pub fee: Fen,
    pub release_days_before: u32,
    pub release_time: NaiveTime,
}

impl WeeklyTemplate {
    /// The sessions the template makes for a doctor on each date of `from..=to`, in date order,
    /// each validated. (Which of them are new is the doctor's schedule actor's call.)
    pub fn sessions(
        &self,
        doctor: DoctorId,
        department: DepartmentId,
        from: NaiveDate,
        to: NaiveDate,
        zone: crate::time::HospitalZone,
    ) -> Result<Vec<ClinicSession>, ValidationError> {
        let mut out = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            for line in self.lines.iter().filter(|l| date.weekday().number_from_monday() == l.weekday) {
                let release_day = date - chrono::Duration::days(i64::from(self.release_days_before));
                let s = ClinicSession {
                    id: SessionId::new(),
                    doctor_id: doctor,
                    department_id: department,
                    date,
                    period: line.period,
                    segments: split_segments(line.start, line.end, line.segment_minutes, line.quota),
                    fee: self.fee,
                    release_at: zone.to_utc(release_day, self.release_time),
                    status: SessionStatus::Open,
                };
                s.validate()?;
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// The back-office document kind of stored templates (id: the doctor id) and of what their last
/// application did (`TemplateRun`, same id).
pub const TEMPLATE_DOCS: &str = "schedule_template";
pub const TEMPLATE_RUNS: &str = "schedule_template_run";

/// A doctor's stored weekly template (BOOK-9): kept, and applied by a durable job every day (and
/// at once when saved) to the weeks ahead the configuration names. Applying only ever adds a
/// session for a date and period the doctor has none for, so sessions already there (booked,
/// stopped, their quota or times changed by hand) are never touched, and applying twice adds
/// nothing the second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredTemplate {
    pub doctor_id: DoctorId,
    pub lines: Vec<StoredLine>,
    pub updated_at: DateTime<Utc>,
}

/// One line of a stored template with its own fee and release (an imported sheet gives each
/// row its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredLine {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u32,
    pub period: Period,
    #[schema(value_type = String, example = "08:00:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "12:00:00")]
    pub end: NaiveTime,
    pub segment_minutes: i64,
    pub quota: u32,
    /// In fen; None: the doctor's title fee when applied.
    pub fee: Option<Fen>,
    pub release_days_before: u32,
    #[schema(value_type = String, example = "08:00:00")]
    pub release_time: NaiveTime,
}

impl StoredLine {
    pub fn new(line: TemplateLine, fee: Option<Fen>, release_days_before: u32, release_time: NaiveTime) -> Self {
        let TemplateLine { weekday, period, start, end, segment_minutes, quota } = line;
        Self { weekday, period, start, end, segment_minutes, quota, fee, release_days_before, release_time }
    }

    /// The line alone as a `WeeklyTemplate`, with `title_fee` where it names no fee.
    pub fn weekly(&self, title_fee: Fen) -> WeeklyTemplate {
        let line = TemplateLine {
            weekday: self.weekday,
            period: self.period,
            start: self.start,
            end: self.end,
            segment_minutes: self.segment_minutes,
            quota: self.quota,
        };
        WeeklyTemplate {
            lines: vec![line],
            fee: self.fee.unwrap_or(title_fee),
            release_days_before: self.release_days_before,
            release_time: self.release_time,
        }
    }
}

impl StoredTemplate {
    /// The sessions its lines make on `from..=to` (see `WeeklyTemplate::sessions`).
    pub fn sessions(
        &self,
        department: DepartmentId,
        title_fee: Fen,
        from: NaiveDate,
        to: NaiveDate,
        zone: crate::time::HospitalZone,
    ) -> Result<Vec<ClinicSession>, ValidationError> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.extend(l.weekly(title_fee).sessions(self.doctor_id, department, from, to, zone)?);
        }
        Ok(out)
    }
}

/// What the last application of a doctor's template did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateRun {
    pub doctor_id: DoctorId,
    pub at: DateTime<Utc>,
    /// The version of the template document applied.
    pub template_version: u64,
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub created: usize,
    /// Dates and periods that had a session already (left as they were).
    pub skipped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn a_slot_id_serialises_as_its_text_and_reads_back() {
        for segment in [0, 7, 10, 99, 100, 12_345, u16::MAX] {
            let s = SlotId { session_id: SessionId::new(), segment };
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<SlotId>(&json).unwrap(), s);
        }
    }

    #[test]
    fn slot_id_round_trips() {
        let s = SlotId { session_id: SessionId::new(), segment: 3 };
        let back: SlotId = s.to_string().parse().unwrap();
        assert_eq!(back, s);
        assert!("nonsense".parse::<SlotId>().is_err());
        assert!(format!("{}.x", SessionId::new()).parse::<SlotId>().is_err());
    }

    #[test]
    fn booking_a_segment_closes_when_it_ends_plus_the_grace_and_a_past_day_is_closed() {
        let zone = HospitalZone::default();
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let segment = |start, end| Segment { start, end, quota: 2 };
        let session = ClinicSession {
            id: SessionId::new(),
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date,
            period: Period::Morning,
            segments: vec![segment(hm(8, 0), hm(8, 30)), segment(hm(8, 30), hm(9, 0))],
            fee: Fen::new(1500),
            release_at: zone.to_utc(date, hm(0, 0)),
            status: SessionStatus::Open,
        };
        let at = |h, m| zone.to_utc(date, hm(h, m));
        let after = |secs| BookingClose::after_end(std::time::Duration::from_secs(secs));
        let none = after(0);
        // Segment 0 ends 08:30 Shanghai (00:30 UTC): open a minute before, closed at the end.
        assert_eq!(session.segment_end(Some(0), &zone), Some(at(8, 30)));
        assert!(!session.booking_closed(Some(0), &zone, none, at(8, 29)));
        assert!(session.booking_closed(Some(0), &zone, none, at(8, 30)));
        // The later segment and the line (the session's end) stay open until 09:00.
        assert!(!session.booking_closed(Some(1), &zone, none, at(8, 30)));
        assert!(!session.booking_closed(None, &zone, none, at(8, 59)));
        assert!(session.booking_closed(None, &zone, none, at(9, 0)));
        // A grace keeps it open that much longer, but never into the next day; nor one too long.
        let hour = after(3600);
        assert!(!session.booking_closed(Some(0), &zone, hour, at(9, 29)));
        assert!(session.booking_closed(Some(0), &zone, hour, at(9, 30)));
        let next_morning = zone.to_utc(date.succ_opt().unwrap(), hm(0, 1));
        assert!(session.booking_closed(Some(0), &zone, after(2 * 86_400), next_morning));
        assert!(!session.booking_closed(Some(0), &zone, BookingClose::after_end(std::time::Duration::MAX), at(23, 59)));
        // A segment it does not have is not closed here (the booking answers no_such_slot).
        assert_eq!(session.segment_end(Some(2), &zone), None);
        assert!(!session.booking_closed(Some(2), &zone, none, at(8, 45)));
        // When the places are next published with a segment closed: each segment's closing in
        // turn, the day before too; none once all have closed; a long grace ends with the day.
        let day_before = zone.to_utc(date.pred_opt().unwrap(), hm(20, 0));
        assert_eq!(session.next_closing(&zone, none, day_before), Some(at(8, 30)));
        assert_eq!(session.next_closing(&zone, none, at(8, 29)), Some(at(8, 30)));
        assert_eq!(session.next_closing(&zone, none, at(8, 30)), Some(at(9, 0)));
        assert_eq!(session.next_closing(&zone, none, at(9, 0)), None);
        assert_eq!(session.next_closing(&zone, hour, at(9, 0)), Some(at(9, 30)));
        let midnight = zone.to_utc(date.succ_opt().unwrap(), hm(0, 0));
        assert_eq!(session.next_closing(&zone, after(86_400), at(9, 0)), Some(midnight));
        assert_eq!(
            session.next_closing(&zone, BookingClose::after_end(std::time::Duration::MAX), at(9, 0)),
            Some(midnight)
        );
        assert_eq!(session.next_closing(&zone, BookingClose::after_end(std::time::Duration::MAX), midnight), None);
        // Closing ahead of each start instead: 20 minutes before, segment 0 (08:00) at 07:40
        // and segment 1 (08:30) at 08:10, whatever the grace after the end says.
        let ahead = BookingClose {
            late: std::time::Duration::from_secs(3600),
            before_start: Some(std::time::Duration::from_secs(1200)),
        };
        assert!(!session.booking_closed(Some(0), &zone, ahead, at(7, 39)));
        assert!(session.booking_closed(Some(0), &zone, ahead, at(7, 40)));
        assert!(!session.booking_closed(Some(1), &zone, ahead, at(8, 9)));
        assert!(session.booking_closed(Some(1), &zone, ahead, at(8, 10)));
        assert!(session.booking_closed(None, &zone, ahead, at(8, 10)), "the line with the last slot");
        assert_eq!(session.next_closing(&zone, ahead, day_before), Some(at(7, 40)));
        assert_eq!(session.next_closing(&zone, ahead, at(7, 40)), Some(at(8, 10)));
        assert_eq!(session.next_closing(&zone, ahead, at(8, 10)), None);
        // Of a later day too, once that day's early slot is due to close: a 00:10 slot with
        // booking closing 20 minutes ahead closes at 23:50 the day before.
        let mut early = session.clone();
        early.segments = vec![segment(hm(0, 10), hm(0, 40)), segment(hm(9, 0), hm(9, 30))];
        let eve = |h, m| zone.to_utc(date.pred_opt().unwrap(), hm(h, m));
        assert_eq!(early.open_from(&zone, ahead, eve(23, 49)), 0);
        assert_eq!(early.open_from(&zone, ahead, eve(23, 50)), 1);
        assert_eq!(early.open_from(&zone, none, eve(23, 50)), 0, "closing at the end, a later day is all open");
    }

    #[test]
    fn a_weekly_template_makes_a_session_per_matching_day() {
        let line =
            |weekday, period, start, end| TemplateLine { weekday, period, start, end, segment_minutes: 30, quota: 4 };
        let t = WeeklyTemplate {
            lines: vec![
                line(1, Period::Morning, hm(8, 0), hm(12, 0)),
                line(3, Period::Afternoon, hm(14, 0), hm(15, 0)),
            ],
            fee: Fen::new(2000),
            release_days_before: 7,
            release_time: hm(8, 0),
        };
        let zone = crate::time::HospitalZone::default();
        // Monday 2026-11-23 to Monday 2026-11-30: Mondays 23 and 30, Wednesday 25.
        let from = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let (doctor, department) = (DoctorId::new(), DepartmentId::new());
        let made = t.sessions(doctor, department, from, to, zone).unwrap();
        let days: Vec<_> = made.iter().map(|s| (s.date.day(), s.period)).collect();
        assert_eq!(days, [(23, Period::Morning), (25, Period::Afternoon), (30, Period::Morning)]);
        let wed = &made[1];
        assert_eq!((wed.doctor_id, wed.department_id, wed.fee), (doctor, department, Fen::new(2000)));
        assert_eq!(wed.segments.len(), 2);
        assert_eq!(wed.release_at, zone.to_utc(NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(), hm(8, 0)));
        // A line whose segments make no valid session is refused, not skipped.
        let bad = WeeklyTemplate { lines: vec![line(1, Period::Morning, hm(8, 0), hm(8, 0))], ..t };
        assert!(bad.sessions(doctor, department, from, to, zone).is_err());
    }

    #[test]
    fn a_stored_template_gives_each_line_its_own_fee_and_release() {
        let line = |weekday, period| TemplateLine {
            weekday,
            period,
            start: hm(8, 0),
            end: hm(9, 0),
            segment_minutes: 30,
            quota: 2,
        };
        let t = StoredTemplate {
            doctor_id: DoctorId::new(),
            lines: vec![
                StoredLine::new(line(1, Period::Morning), Some(Fen::new(6000)), 7, hm(8, 0)),
                StoredLine::new(line(2, Period::Morning), None, 3, hm(7, 30)),
            ],
            updated_at: Utc::now(),
        };
        let back: StoredTemplate = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t, "stored as JSON and read back");
        let zone = crate::time::HospitalZone::default();
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let made =
            t.sessions(DepartmentId::new(), Fen::new(2000), monday, monday + chrono::Duration::days(6), zone).unwrap();
        assert_eq!(made.len(), 2);
        assert!(made.iter().all(|s| s.doctor_id == t.doctor_id));
        let fees: Vec<Fen> = made.iter().map(|s| s.fee).collect();
        assert_eq!(fees, [Fen::new(6000), Fen::new(2000)], "the line's fee, else the title's");
        let tuesday = monday + chrono::Duration::days(1);
        assert_eq!(made[1].release_at, zone.to_utc(tuesday - chrono::Duration::days(3), hm(7, 30)));
    }

    #[test]
    fn segments_split_and_validate() {
        let segs = split_segments(hm(8, 0), hm(11, 30), 30, 5);
        assert_eq!(segs.len(), 7);
        assert_eq!(segs.last().unwrap().end, hm(11, 30));
        let mut s = ClinicSession {
            id: SessionId::new(),
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            period: Period::Morning,
            segments: segs,
            fee: Fen::new(1500),
            release_at: Utc::now(),
            status: SessionStatus::Open,
        };
        assert!(s.validate().is_ok());
        assert_eq!(s.total_quota(), 35);
        s.segments.swap(0, 1);
        assert!(s.validate().is_err());
    }
}
