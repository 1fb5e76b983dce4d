//! A patient socket's connection as its task and the hub share it. The hub writes a topic update
//! straight onto a connection whose task is idle and which owes nothing, so a popular doctor's
//! thousands of subscribers cost a write each, not a task woken, queued and polled each
//! (docs/benchmarks.md, the fan-out of 2026-12-02). The task does the rest: it reads, answers,
//! sends the account's events, and writes what the kernel did not take at once, within its
//! write timeout.
//!
//! One lock, held for one step and never across an await, keeps frames whole and in order: the
//! hub starts a frame only when nothing is owed, so it never cuts into one the task began, and
//! it writes the older updates still waiting in the slots before a new one.

use axum::extract::ws::Message;
use hospital_domain::live::TopicEvent;
use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite};

use super::protocol::Codec;
use super::topics::TopicSlots;
use super::websocket::{Upgraded, WebSocket};
use super::wire::WsError;

/// The connection and what decides whether the hub may write on it now.
pub struct Line<S = Upgraded>(Mutex<LineState<S>>);

pub struct LineState<S = Upgraded> {
    pub ws: WebSocket<S>,
    /// The task is answering its client (the welcome and a resume's replay, a subscribe and its
    /// snapshot): updates wait in the slots for it meanwhile, so none goes out before the welcome,
    /// or ahead of a snapshot that it is newer than.
    pub busy: bool,
    /// The topics the socket subscribed to: an update of any other (one offered as it
    /// unsubscribed) is not sent.
    pub subscribed: HashSet<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Line<S> {
    /// A line over `ws`, busy until its task says otherwise (after the welcome).
    pub fn new(ws: WebSocket<S>) -> Arc<Self> {
        Arc::new(Line(Mutex::new(LineState { ws, busy: true, subscribed: HashSet::new() })))
    }

    pub fn lock(&self) -> MutexGuard<'_, LineState<S>> {
        self.0.lock().expect("socket line")
    }

    /// The state, unless someone holds it now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, LineState<S>>> {
        self.0.try_lock().ok()
    }

    /// `WebSocket::recv`, the lock taken for each poll. Cancel-safe.
    pub async fn recv(&self) -> Option<Result<Message, WsError>> {
        poll_fn(|cx| self.lock().ws.poll_recv(cx)).await
    }

    /// `WebSocket::send`, the lock taken for each poll.
    pub async fn send(&self, msg: Message) -> Result<(), WsError> {
        let mut started = false;
        poll_fn(|cx| self.lock().ws.poll_send(cx, &msg, &mut started)).await
    }

    /// Writes what is owed (the rest of a frame the kernel did not take at once).
    pub async fn flush(&self) -> Result<(), WsError> {
        poll_fn(|cx| self.lock().ws.poll_write_owed(cx)).await.map_err(WsError::Io)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineState<S> {
    /// The hub may write now: the task is not answering its client and a frame can start.
    pub fn idle(&self) -> bool {
        !self.busy && self.ws.clear_to_write()
    }

    /// Writes the updates waiting in `slots`, oldest first, as far as the connection takes them
    /// without waiting. Ok(true): all went out and nothing is owed; Ok(false): a write did not
    /// complete (the rest of a frame is owed, or a TLS stream's flush waits) and later updates
    /// are back in the slots, both for the task to finish with its own waker. Err: the
    /// connection is broken.
    pub fn write_topics(&mut self, slots: &TopicSlots, codec: Codec) -> Result<bool, WsError> {
        // Outside tokio's budget: the hub writes to hundreds of sockets in one poll of its task,
        // and after its budget's 128 writes tokio would refuse every further write (`Pending`),
        // leaving each to the socket's task after all.
        let mut once = std::pin::pin!(tokio::task::coop::unconstrained(poll_fn(|cx| {
            Poll::Ready(self.write_topics_now(cx, slots, codec))
        })));
        // Nobody to wake: what the kernel does not take is left to the socket's task.
        match once.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => unreachable!("answers at once"),
        }
    }

    fn write_topics_now(&mut self, cx: &mut Context<'_>, slots: &TopicSlots, codec: Codec) -> Result<bool, WsError> {
        let mut left = Vec::new();
        let mut unfinished = false;
        for prepared in slots.take() {
            // Typing is offered only to its own account's sockets (`Hub::deliver_direct`).
            let direct = matches!(prepared.event, TopicEvent::Typing(_));
            if !direct && !self.subscribed.contains(prepared.event.topic()) {
                continue;
            }
            if !self.ws.clear_to_write() {
                left.push(prepared);
                continue;
            }
            let mut started = false;
            match self.ws.poll_send(cx, &prepared.message(codec), &mut started) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => unfinished = true,
            }
            frame_out(prepared.event.kind());
            let lag = super::log::now_ms().saturating_sub(prepared.at_ms) as f64 / 1000.0;
            hospital_actors::observe!("ws_fanout_latency_seconds", lag);
        }
        slots.put_back(left);
        Ok(!unfinished && self.ws.clear_to_write())
    }
}

/// Counts a frame sent; a topic update's kind, sent to every watching socket, with its counter
/// looked up once (`hospital_actors::count!`).
pub(super) fn frame_out(kind: &'static str) {
    match kind {
        "availability" => hospital_actors::count!("ws_frames_out_total", "type" => "availability"),
        "queue_summary" => hospital_actors::count!("ws_frames_out_total", "type" => "queue_summary"),
        other => metrics::counter!("ws_frames_out_total", "type" => other).increment(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::topics::tests::update;
    use crate::realtime::websocket::tests::server_frame;
    use hospital_domain::{DoctorId, SessionId};
    use tokio::io::DuplexStream;

    /// A welcomed line over a pipe whose buffer holds `room` bytes, subscribed to `doctor`.
    fn line(room: usize, doctor: DoctorId) -> (Arc<Line<DuplexStream>>, DuplexStream) {
        let (a, b) = tokio::io::duplex(room);
        let line = Line::new(WebSocket::new(a, 1 << 16));
        let mut state = line.lock();
        state.busy = false;
        state.subscribed.insert(format!("doctor:{doctor}"));
        drop(state);
        (line, b)
    }

    /// The `remaining` an availability frame the peer got carries.
    async fn remaining(peer: &mut DuplexStream) -> u64 {
        let (fin, opcode, body) = server_frame(peer).await;
        assert!(fin && opcode == 0x1, "a whole text frame");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["payload"]["data"]["remaining"][0].as_u64().unwrap_or_else(|| panic!("an availability update: {v}"))
    }

    /// An idle line takes an update at once, with no task to wake; one of a topic the socket
    /// is not subscribed to is not sent; a busy line (its task answering the client) leaves
    /// updates in the slots.
    #[tokio::test]
    async fn an_idle_line_is_written_at_once_and_a_busy_one_is_left_to_its_task() {
        let (d, other, s) = (DoctorId::new(), DoctorId::new(), SessionId::new());
        let (line, mut peer) = line(1 << 16, d);
        let slots = TopicSlots::default();
        assert!(line.lock().idle());
        slots.offer(update(other, s, 9, 1));
        slots.offer(update(d, s, 5, 2));
        assert!(line.lock().write_topics(&slots, Codec::Json).unwrap(), "all written");
        assert_eq!(remaining(&mut peer).await, 5, "the other doctor's update was not sent");
        assert!(slots.take().is_empty());

        line.lock().busy = true;
        assert!(!line.lock().idle(), "the hub leaves a busy line to its task");
        line.lock().busy = false;
        line.lock().subscribed.clear();
        slots.offer(update(d, s, 4, 3));
        assert!(line.lock().write_topics(&slots, Codec::Json).unwrap());
        slots.offer(update(other, s, 1, 4));
        line.lock().subscribed.insert(format!("doctor:{other}"));
        assert!(line.lock().write_topics(&slots, Codec::Json).unwrap());
        assert_eq!(remaining(&mut peer).await, 1, "nothing of the unsubscribed doctor went before");
    }

    /// A peer that takes only part of a frame: the rest is owed, later updates wait in the slots
    /// (a newer one replacing its older), and once the task has written what is owed they follow
    /// whole and in order.
    #[tokio::test]
    async fn a_frame_the_kernel_takes_in_part_is_finished_before_the_next() {
        let d = DoctorId::new();
        let (s1, s2) = (SessionId::new(), SessionId::new());
        let (line, mut peer) = line(64, d);
        let slots = TopicSlots::default();
        slots.offer(update(d, s1, 7, 1));
        slots.offer(update(d, s2, 6, 2));
        assert!(!line.lock().write_topics(&slots, Codec::Json).unwrap(), "the first frame is longer than 64 bytes");
        assert!(!line.lock().idle(), "owing: the hub writes no more");
        slots.offer(update(d, s2, 3, 3));
        let reader = tokio::spawn(async move {
            let got = [remaining(&mut peer).await, remaining(&mut peer).await];
            (got, peer)
        });
        // As the socket's task does (`send_pending`): what is owed, then what waits, until done.
        loop {
            line.flush().await.unwrap();
            if line.lock().write_topics(&slots, Codec::Json).unwrap() {
                break;
            }
        }
        let (got, _peer) = reader.await.unwrap();
        assert_eq!(got, [7, 3], "s1's frame whole, then s2's newest (its 6 replaced)");
        assert!(slots.take().is_empty());
    }

    /// The hub writes to hundreds of sockets in one poll of its task: tokio's budget (128
    /// operations a poll) must not turn the rest into waits left to the sockets' tasks.
    #[tokio::test]
    async fn hundreds_of_lines_are_written_in_one_poll() {
        let d = DoctorId::new();
        let update = update(d, SessionId::new(), 1, 1);
        let lines: Vec<_> = (0..300).map(|_| line(1 << 12, d)).collect();
        let written = lines
            .iter()
            .filter(|(line, _)| {
                let slots = TopicSlots::default();
                slots.offer(update.clone());
                line.lock().write_topics(&slots, Codec::Json).unwrap()
            })
            .count();
        assert_eq!(written, 300, "every line written at once");
    }

    /// A stream that takes the frame into its own buffer and then cannot flush it (a TLS stream
    /// whose peer is slow): nothing is owed here, yet the write is not done, so the task is
    /// called to finish it.
    #[tokio::test]
    async fn a_write_whose_flush_waits_is_left_to_the_task() {
        let d = DoctorId::new();
        let (a, mut peer) = tokio::io::duplex(16);
        let line = Line::new(WebSocket::new(tokio::io::BufWriter::new(a), 1 << 16));
        line.lock().busy = false;
        line.lock().subscribed.insert(format!("doctor:{d}"));
        let slots = TopicSlots::default();
        slots.offer(update(d, SessionId::new(), 2, 1));
        assert!(!line.lock().write_topics(&slots, Codec::Json).unwrap(), "the flush waits: not done");
        assert!(line.lock().ws.clear_to_write(), "nothing owed here: the stream holds it");
        let reader = tokio::spawn(async move { remaining(&mut peer).await });
        line.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), 2);
    }
}
