//! A topic update on its way to this node's subscribers: encoded once and shared (`Prepared`),
//! kept per subscriber as the newest of its topic until written (`TopicSlots`), and what it is
//! offered to (`TopicSink`: a patient's socket, a back-office page's staff socket).

use hospital_domain::live::TopicEvent;
use hospital_domain::SessionId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::protocol::{Codec, Outgoing};
use axum::extract::ws::Message;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What replaces what in a socket's topic slots: one value per topic and session.
type SlotKey = (String, Option<SessionId>);

/// A number for a new topic subscriber, unique on this node (the topic index's key).
pub fn new_sink_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What topic updates are offered to: a patient's socket, a back-office page's staff socket.
pub trait TopicSink: Send + Sync {
    /// Its number in the topic index (`new_sink_id`).
    fn sink_id(&self) -> u64;
    /// Keeps `event` as its topic's newest until the subscriber's writer sends it.
    fn offer_topic(&self, event: Arc<Prepared>);
    /// Sends what was offered now, or has the subscriber's writer send it. Apart from
    /// `offer_topic` so that one update is kept by every subscriber before any is written:
    /// whoever writes then writes a subscriber's updates oldest first.
    fn send_offered(&self);
}

/// The newest update of each topic and session a subscriber has not sent yet (coalesced: a
/// slow subscriber gets the latest value, never a backlog). A list, not a map: a socket's writer
/// takes what is pending at once, so it holds one update or a few, and an update reaching
/// thousands of sockets then costs each one a pointer pushed, not a key copied and hashed into
/// a fresh table (docs/benchmarks.md, the fan-out's profile of 2026-12-01 22:00).
#[derive(Default)]
pub struct TopicSlots(Mutex<Vec<Arc<Prepared>>>);

impl TopicSlots {
    /// Keeps `event`, replacing an older one of its topic and session.
    pub fn offer(&self, event: Arc<Prepared>) {
        let mut slots = self.0.lock().expect("topic slots");
        match slots.iter_mut().find(|p| p.key == event.key) {
            Some(older) => {
                *older = event;
                drop(slots);
                metrics::counter!("ws_drops_total", "reason" => "coalesced").increment(1);
            }
            None => slots.push(event),
        }
    }

    /// The pending updates, oldest first.
    pub fn take(&self) -> Vec<Arc<Prepared>> {
        // Taken whole: an idle subscriber keeps no list's capacity.
        let mut v = std::mem::take(&mut *self.0.lock().expect("topic slots"));
        v.sort_by_key(|p| p.at_ms);
        v
    }

    /// Puts back updates taken and not written, unless a newer one of their topic and session
    /// came meanwhile (anything offered since `take` is newer).
    pub fn put_back(&self, older: Vec<Arc<Prepared>>) {
        if older.is_empty() {
            return;
        }
        let mut slots = self.0.lock().expect("topic slots");
        for p in older {
            if !slots.iter().any(|q| q.key == p.key) {
                slots.push(p);
            }
        }
    }

    /// Forgets pending updates of `topic` older than `before_ms` (a snapshot was just sent).
    pub(super) fn drop_older(&self, topic: &str, before_ms: u64) {
        self.0.lock().expect("topic slots").retain(|p| p.key.0 != topic || p.at_ms >= before_ms);
    }
}

/// A topic update on its way to many sockets: encoded at most once per encoding and then shared
/// (the frame bytes are reference-counted), so a popular doctor's thousands of subscribers cost
/// one serialisation, not one each.
pub struct Prepared {
    pub event: TopicEvent,
    pub at_ms: u64,
    /// What a newer update replaces (`TopicEvent::coalesce_key`), worked out once.
    key: SlotKey,
    json: OnceLock<axum::extract::ws::Utf8Bytes>,
    msgpack: OnceLock<axum::body::Bytes>,
}

impl Prepared {
    pub fn new(event: TopicEvent, at_ms: u64) -> Arc<Self> {
        let key = event.coalesce_key();
        Arc::new(Self { event, at_ms, key, json: OnceLock::new(), msgpack: OnceLock::new() })
    }

    pub(crate) fn message(&self, codec: Codec) -> Message {
        let frame = || codec.encode(&Outgoing::new(&self.event));
        match codec {
            Codec::Json => Message::Text(
                self.json
                    .get_or_init(|| match frame() {
                        super::protocol::Frame::Text(t) => t.into(),
                        super::protocol::Frame::Binary(_) => unreachable!("JSON is text"),
                    })
                    .clone(),
            ),
            Codec::MsgPack => Message::Binary(
                self.msgpack
                    .get_or_init(|| match frame() {
                        super::protocol::Frame::Binary(b) => b.into(),
                        super::protocol::Frame::Text(_) => unreachable!("MessagePack is binary"),
                    })
                    .clone(),
            ),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use hospital_domain::live::{Availability, TopicEvent};
    use hospital_domain::schedule::{Period, SessionStatus};
    use hospital_domain::{DepartmentId, DoctorId};

    /// A doctor's availability update: `left` places in `session`, at `at_ms`.
    pub(in crate::realtime) fn update(doctor: DoctorId, session: SessionId, left: u32, at_ms: u64) -> Arc<Prepared> {
        let data = Availability {
            doctor_id: doctor,
            department_id: DepartmentId::new(),
            session_id: session,
            date: chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
            period: Period::Morning,
            status: SessionStatus::Open,
            remaining: vec![left],
            open_from: 0,
            waiting: 0,
        };
        Prepared::new(TopicEvent::availability(format!("doctor:{doctor}"), data), at_ms)
    }

    fn left(p: &Prepared) -> u32 {
        match &p.event {
            TopicEvent::Availability(u) => u.data.remaining[0],
            _ => unreachable!(),
        }
    }

    /// A subscriber's pending updates: the newest per topic and session, oldest first; a
    /// snapshot's time drops the older ones of its topic.
    #[test]
    fn topic_slots_keep_the_newest_per_topic_and_session() {
        let slots = TopicSlots::default();
        let (d, e) = (DoctorId::new(), DoctorId::new());
        let (s1, s2) = (SessionId::new(), SessionId::new());
        slots.offer(update(d, s1, 9, 10));
        slots.offer(update(e, s1, 5, 11));
        slots.offer(update(d, s2, 7, 12));
        slots.offer(update(d, s1, 8, 13));
        let got: Vec<(u64, u32)> = slots.take().iter().map(|p| (p.at_ms, left(p))).collect();
        assert_eq!(got, [(11, 5), (12, 7), (13, 8)], "d/s1's 9 replaced by its 8; oldest first");
        assert!(slots.take().is_empty(), "taken whole");

        slots.offer(update(d, s1, 6, 20));
        slots.offer(update(d, s2, 4, 30));
        slots.offer(update(e, s2, 3, 21));
        slots.drop_older(&format!("doctor:{d}"), 25);
        let got: Vec<(u64, u32)> = slots.take().iter().map(|p| (p.at_ms, left(p))).collect();
        assert_eq!(got, [(21, 3), (30, 4)], "only d's update older than the snapshot went");

        // Taken and not written: back, unless a newer one of its topic and session came since.
        let older = vec![update(d, s1, 2, 40), update(d, s2, 1, 41)];
        slots.offer(update(d, s1, 0, 42));
        slots.put_back(older);
        let got: Vec<(u64, u32)> = slots.take().iter().map(|p| (p.at_ms, left(p))).collect();
        assert_eq!(got, [(41, 1), (42, 0)], "d/s1's 2 not put back over its newer 0");
    }
}
