//! Agents' presence as their consoles report it (CS-2): each open console socket is a
//! *connection* with the state its agent chose there (online or away) and the time it was last
//! heard from. An agent's presence is derived from their connections: online if any connection is
//! online, away if they have connections but none online, offline if none. Connections that stop
//! heartbeating (their node died, the network went) lapse after a lease; a socket that closes is
//! kept for a short grace first, so reloading the console page does not hand the agent's
//! conversations back to the backlog.
//!
//! The dispatcher actor of each group keeps a `PresenceBoard` beside its `Dispatcher`, stored
//! together (`DispatcherState`), and feeds every change of an agent's derived presence to the
//! dispatcher (`Dispatcher::set_presence`). No clock is read here: every time is passed in.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::dispatcher::{Dispatcher, Presence};
use crate::StaffId;

/// One console socket of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// What the agent chose on this console: `Online` or `Away` (`Offline` closes nothing but
    /// takes the connection out of the count).
    pub presence: Presence,
    pub last_seen: DateTime<Utc>,
    /// Set when the socket closed: the connection counts until then, then it is gone.
    pub leaving_until: Option<DateTime<Utc>>,
}

/// Every agent's connections in one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceBoard {
    agents: BTreeMap<StaffId, BTreeMap<Uuid, Connection>>,
}

/// How long connections count without news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leases {
    /// A connection not heard from for this long is gone (a few heartbeats).
    pub lease: Duration,
    /// A closed socket still counts for this long (a page reload).
    pub grace: Duration,
}

impl PresenceBoard {
    /// The agent's presence as their connections say.
    pub fn presence_of(&self, agent: StaffId) -> Presence {
        let Some(conns) = self.agents.get(&agent) else { return Presence::Offline };
        let counted = conns.values().filter(|c| c.presence != Presence::Offline);
        let mut any = false;
        for c in counted {
            if c.presence == Presence::Online {
                return Presence::Online;
            }
            any = true;
        }
        if any {
            Presence::Away
        } else {
            Presence::Offline
        }
    }

    /// A console connected or changed its state (`Offline` means the agent chose to go offline
    /// from this console: the connection stays, counting for nothing).
    pub fn set(&mut self, agent: StaffId, conn: Uuid, presence: Presence, now: DateTime<Utc>) {
        self.agents
            .entry(agent)
            .or_default()
            .insert(conn, Connection { presence, last_seen: now, leaving_until: None });
    }

    /// A heartbeat of a known connection; false if the connection is not known here (it lapsed,
    /// or the dispatcher restarted from an older state): the console then states its presence
    /// again.
    pub fn heartbeat(&mut self, agent: StaffId, conn: Uuid, now: DateTime<Utc>) -> bool {
        match self.agents.get_mut(&agent).and_then(|c| c.get_mut(&conn)) {
            Some(c) if c.leaving_until.is_none() => {
                c.last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// The socket closed: the connection counts for `grace` more (a reload reconnects within it).
    pub fn disconnect(&mut self, agent: StaffId, conn: Uuid, now: DateTime<Utc>, grace: Duration) {
        if let Some(c) = self.agents.get_mut(&agent).and_then(|c| c.get_mut(&conn)) {
            c.leaving_until = Some(now + grace);
        }
        if grace <= Duration::zero() {
            self.remove(agent, conn);
        }
    }

    fn remove(&mut self, agent: StaffId, conn: Uuid) {
        if let Some(conns) = self.agents.get_mut(&agent) {
            conns.remove(&conn);
            if conns.is_empty() {
                self.agents.remove(&agent);
            }
        }
    }

    /// Drops connections past their grace or lease; returns the agents whose connections changed
    /// (their presence may have).
    pub fn expire(&mut self, now: DateTime<Utc>, leases: Leases) -> Vec<StaffId> {
        let mut gone = Vec::new();
        for (agent, conns) in &self.agents {
            for (id, c) in conns {
                let lapsed = match c.leaving_until {
                    Some(until) => now >= until,
                    None => now - c.last_seen >= leases.lease,
                };
                if lapsed {
                    gone.push((*agent, *id));
                }
            }
        }
        let mut agents: Vec<StaffId> = gone.iter().map(|(a, _)| *a).collect();
        agents.dedup();
        for (agent, conn) in gone {
            self.remove(agent, conn);
        }
        agents
    }

    /// Every connection starts its grace (the dispatcher restarted: the sockets it knew may be
    /// gone; live ones say so again with their next heartbeat, which is refused, and a new
    /// `set`).
    pub fn disconnect_all(&mut self, now: DateTime<Utc>, grace: Duration) {
        for conns in self.agents.values_mut() {
            for c in conns.values_mut() {
                c.leaving_until.get_or_insert(now + grace);
            }
        }
    }

    /// Forgets an agent (removed from the group).
    pub fn forget(&mut self, agent: StaffId) {
        self.agents.remove(&agent);
    }

    /// Agents with any connection.
    pub fn agents(&self) -> impl Iterator<Item = StaffId> + '_ {
        self.agents.keys().copied()
    }
}

/// What a dispatcher actor stores: its group's dispatcher and its agents' connections, one row
/// per group, written whole after every change (the actor is its only writer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatcherState {
    pub dispatcher: Dispatcher,
    pub board: PresenceBoard,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    const LEASES: Leases = Leases { lease: Duration::seconds(90), grace: Duration::seconds(10) };

    #[test]
    fn presence_is_derived_from_the_connections() {
        let mut b = PresenceBoard::default();
        let a = StaffId::new();
        let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(b.presence_of(a), Presence::Offline);
        b.set(a, c1, Presence::Away, t0());
        assert_eq!(b.presence_of(a), Presence::Away);
        b.set(a, c2, Presence::Online, t0());
        assert_eq!(b.presence_of(a), Presence::Online, "one online console is enough");
        b.set(a, c2, Presence::Offline, t0());
        assert_eq!(b.presence_of(a), Presence::Away, "an offline console counts for nothing");
        b.set(a, c1, Presence::Offline, t0());
        assert_eq!(b.presence_of(a), Presence::Offline);
    }

    #[test]
    fn closed_sockets_count_for_the_grace_and_silent_ones_for_the_lease() {
        let mut b = PresenceBoard::default();
        let (a, other) = (StaffId::new(), StaffId::new());
        let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
        b.set(a, c1, Presence::Online, t0());
        b.set(other, c2, Presence::Online, t0());
        b.disconnect(a, c1, t0(), LEASES.grace);
        assert!(!b.heartbeat(a, c1, t0()), "a closed socket's heartbeat does not revive it");
        assert_eq!(b.presence_of(a), Presence::Online, "within the grace");
        assert!(b.expire(t0() + Duration::seconds(9), LEASES).is_empty());
        assert_eq!(b.expire(t0() + Duration::seconds(10), LEASES), vec![a]);
        assert_eq!(b.presence_of(a), Presence::Offline);
        // The other heartbeats: kept past the first lease, lapses after a silent one.
        assert!(b.heartbeat(other, c2, t0() + Duration::seconds(60)));
        assert!(b.expire(t0() + Duration::seconds(100), LEASES).is_empty());
        assert_eq!(b.expire(t0() + Duration::seconds(150), LEASES), vec![other]);
        assert_eq!(b.presence_of(other), Presence::Offline);
        assert!(!b.heartbeat(other, c2, t0()), "unknown after it lapsed");
        // No grace: gone at once.
        b.set(a, c1, Presence::Online, t0());
        b.disconnect(a, c1, t0(), Duration::zero());
        assert_eq!(b.presence_of(a), Presence::Offline);
        assert_eq!(b.agents().count(), 0);
    }

    #[test]
    fn after_a_restart_every_known_connection_counts_only_for_the_grace() {
        let mut b = PresenceBoard::default();
        let a = StaffId::new();
        let c = Uuid::now_v7();
        b.set(a, c, Presence::Online, t0());
        b.disconnect_all(t0(), LEASES.grace);
        assert_eq!(b.presence_of(a), Presence::Online, "within the grace");
        assert!(!b.heartbeat(a, c, t0()), "its heartbeat is refused: the console states its presence again");
        assert_eq!(b.expire(t0() + LEASES.grace, LEASES), vec![a]);
        assert_eq!(b.presence_of(a), Presence::Offline);
    }
}
