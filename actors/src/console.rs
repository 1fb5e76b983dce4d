//! Where the chat's actors send what agents' consoles show live (CS-2): `ConsoleEvent`s for one
//! agent or for a group's consoles. Unlike a patient's personal events these are not logged: each
//! message carries its conversation's `seq`, so a console that reconnects reloads its inbox and
//! asks each conversation for what came after the last `seq` it has (see
//! `hospital_domain::chat::console`). The gateway implements the sink (its console sockets).

use hospital_domain::chat::console::StaffEvent;
use std::sync::Arc;

pub trait ConsoleBus: Send + Sync {
    /// Delivers to the consoles concerned. Never blocks the caller.
    fn send(&self, event: StaffEvent);
}

struct NoConsoles;

impl ConsoleBus for NoConsoles {
    fn send(&self, _event: StaffEvent) {}
}

/// The handle the chat's actors hold.
#[derive(Clone)]
pub struct Consoles {
    bus: Arc<dyn ConsoleBus>,
}

impl Default for Consoles {
    fn default() -> Self {
        Self { bus: Arc::new(NoConsoles) }
    }
}

impl Consoles {
    pub fn new(bus: Arc<dyn ConsoleBus>) -> Self {
        Self { bus }
    }

    pub fn send(&self, event: StaffEvent) {
        self.bus.send(event);
    }
}
