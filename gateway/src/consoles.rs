//! This node's agents' console sockets (`ConsoleHub`, CS-2): the registry the console socket
//! (`chat::console_ws`) and the back office's staff socket (`staff_ws`) register in, and the
//! actors' `ConsoleBus`. A console event made here goes to this node's consoles at once and to
//! the other nodes' through the real-time bus; one made elsewhere comes from the hub.

use hospital_actors::ConsoleBus;
use hospital_domain::chat::console::{Audience, StaffEvent};
use hospital_domain::chat::GroupCode;
use hospital_domain::StaffId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::realtime::bus::Bus;
use crate::realtime::hub::{Hub, LocalConsoles};

/// Frames queued for one console before it counts as too slow and is closed.
const OUTBOX: usize = 1024;

struct ConsoleSocket {
    agent: StaffId,
    groups: Vec<GroupCode>,
    tx: mpsc::Sender<Arc<str>>,
}

/// At most one typing indicator per conversation and side is passed on within this time.
pub const TYPING_EVERY: Duration = Duration::from_secs(1);

/// This node's console sockets.
#[derive(Default)]
pub struct ConsoleHub {
    sockets: Mutex<HashMap<u64, ConsoleSocket>>,
    next: AtomicU64,
    /// When each conversation's patient last had a typing indicator passed on.
    typing: Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    /// When each conversation's agent last had one passed on to the patient.
    agent_typing: Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    /// The real-time bus, through which console events reach the other nodes' consoles.
    bus: std::sync::OnceLock<Arc<Bus>>,
    /// Signs the links of image messages as they go out (`http::chat_images`); set at start.
    pub images: std::sync::OnceLock<crate::files::FileService>,
}

impl ConsoleHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Joins the node's real-time machinery: console events made here go to every node's
    /// consoles through `bus` (Redis pub/sub with several nodes), and those made elsewhere come
    /// to this node's consoles from `hub`.
    pub fn join(self: &Arc<Self>, hub: &Hub, bus: &Arc<Bus>) {
        let local: Arc<dyn LocalConsoles> = self.clone();
        let _ = hub.consoles.set(Arc::downgrade(&local));
        let _ = self.bus.set(bus.clone());
    }

    /// A socket of `agent` (a back-office socket has no groups: it gets `AllStaff` events only).
    pub(crate) fn register(&self, agent: StaffId, groups: Vec<GroupCode>) -> (u64, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sockets.lock().expect("console hub").insert(id, ConsoleSocket { agent, groups, tx });
        (id, rx)
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.sockets.lock().expect("console hub").remove(&id);
    }

    /// Whether a typing indicator of `conversation` may go out now (at most one per
    /// `TYPING_EVERY`); typing is never stored.
    pub fn typing_allowed(&self, conversation: hospital_domain::ConversationId) -> bool {
        allowed(&self.typing, conversation)
    }

    /// The same for the agent's side (`typing_allowed` is the patient's).
    pub fn agent_typing_allowed(&self, conversation: hospital_domain::ConversationId) -> bool {
        allowed(&self.agent_typing, conversation)
    }

    /// Console sockets open on this node for `agent`.
    pub fn sockets_of(&self, agent: StaffId) -> usize {
        self.sockets.lock().expect("console hub").values().filter(|s| s.agent == agent).count()
    }
}

/// Whether a typing indicator for `conversation` may pass now (at most one per `TYPING_EVERY`).
fn allowed(
    map: &Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    conversation: hospital_domain::ConversationId,
) -> bool {
    let now = std::time::Instant::now();
    let mut t = map.lock().expect("typing");
    if t.len() > 10_000 {
        t.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
    }
    match t.get(&conversation) {
        Some(at) if now.duration_since(*at) < TYPING_EVERY => false,
        _ => {
            t.insert(conversation, now);
            true
        }
    }
}

impl ConsoleBus for ConsoleHub {
    /// This node's consoles at once; every other node's through the bus.
    fn send(&self, event: StaffEvent) {
        self.deliver(&event);
        if let Some(bus) = self.bus.get() {
            bus.console(&event);
        }
    }
}

impl LocalConsoles for ConsoleHub {
    /// Hands a console event to the consoles concerned on this node (an image message with its
    /// link made here and now: links are never on the bus).
    fn deliver(&self, event: &StaffEvent) {
        let body = crate::image_links::console(self.images.get(), &event.event);
        let frame: Arc<str> = match serde_json::to_string(&body) {
            Ok(s) => s.into(),
            Err(e) => {
                tracing::warn!(error = %e, "console event not encodable");
                return;
            }
        };
        let sockets = self.sockets.lock().expect("console hub");
        for s in sockets.values() {
            let to = match &event.to {
                Audience::Agent(a) => s.agent == *a,
                Audience::Group(g) => s.groups.contains(g),
                Audience::AllStaff => true,
            };
            // A console that cannot keep up loses live frames; it reloads on reconnect.
            if to && s.tx.try_send(frame.clone()).is_err() {
                tracing::debug!(agent = %s.agent, "console outbox full; frame dropped");
            }
        }
    }
}
