//! The dispatcher of one service group (CS-2, CS-3): its agents' presence and caps, its backlog,
//! and the rules that say which conversation goes to which agent. The dispatcher actor owns one
//! and applies an operation with the time; each operation answers what happened as data
//! (`Outcome`: assignments, hand-backs, changed places in line), which the actor stores, passes
//! to the conversation actors and pushes to patients.
//!
//! The rules:
//! - **Arrival order.** The backlog is kept in order of arrival, and arrival is when the patient
//!   opened the conversation (`Arrival::arrived_at`, the conversation's `created_at`; the
//!   conversation id breaks ties). That time stays with the conversation for good: it is its
//!   place in line in every backlog it ever waits in. The head of the backlog is always served
//!   first.
//! - **Hand-backs go to the head.** An agent who goes away or offline hands their conversations
//!   back; they go in at their arrival time, which puts them at the head: every conversation an
//!   agent holds was taken from the head, so it arrived before everything that queued behind it.
//!   (The one thing that can still be ahead is a conversation transferred in from another group
//!   that arrived even earlier.) Lowering an agent's cap below their load hands back their most
//!   recently taken conversations the same way, so no agent is ever over cap.
//! - **Transfers keep their place.** A conversation transferred to another group leaves this
//!   dispatcher (`transfer_out`) and arrives at the other (`arrive`) with its original arrival
//!   time: it neither loses its place for a transfer it did not ask for, nor passes anyone who
//!   opened a conversation before it did. A transfer to another agent of the group goes straight
//!   to that agent, who must be online with room (when everyone is full, there is no one to hand
//!   it to without putting them over cap; transfer it to a group instead).
//! - **Who gets the next conversation.** Among the online agents under their cap: the one with
//!   the fewest open conversations; on a tie, the one who was given a conversation least recently
//!   (by the dispatcher's count of assignments, so the rule needs no clock and same-instant
//!   assignments still rotate); then the smallest staff id. The dispatcher is work-conserving:
//!   after every operation, either the backlog is empty or no online agent has room.
//! - **Estimated wait** (CS-3). With `H` the moving average of a conversation's handling time in
//!   this group (assignment to close; starts at `DEFAULT_HANDLING_SECS`, see `crate::average`)
//!   and `C` the summed caps of the online agents: while anyone waits, every one of the `C` places
//!   is taken, and places free up at about `C / H`; the `p`-th in line waits for `p` of them,
//!   about `ceil(p * H / C)` (shown in whole minutes, rounded up). With nobody online there is no
//!   estimate (`None`). The estimate depends only on the dispatcher's state, so it changes only
//!   when an operation changes that state, and each operation's outcome carries every place that
//!   changed (pushed on every change, and only then).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::conversation::Conversation;
use super::{AgentRef, GroupCode};
use crate::account::parse_name;
use crate::average::moving_average;
use crate::{AccountId, ConversationId, StaffId, ValidationError};

/// An agent's cap of concurrent conversations unless set otherwise.
pub const DEFAULT_CAP: u32 = 5;
/// The highest cap an agent may be given.
pub const MAX_CAP: u32 = 50;
/// The handling time assumed before any has been observed.
pub const DEFAULT_HANDLING_SECS: u32 = 6 * 60;
/// Observed handling times are clamped to this range before they move the average: a chat left
/// open over lunch must not swing every estimate.
pub const MIN_OBSERVED_SECS: i64 = 30;
pub const MAX_OBSERVED_SECS: i64 = 60 * 60;

/// An agent's presence, from their console's socket and heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Taking conversations.
    Online,
    /// Connected but not taking conversations (a break); holds none.
    Away,
    /// Not connected (closed the console, missed heartbeats); holds none.
    Offline,
}

/// A conversation waiting, or held, in this group: who, and its place in line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    pub conversation_id: ConversationId,
    pub account_id: AccountId,
    /// When the patient opened the conversation: kept across hand-backs and transfers.
    pub arrived_at: DateTime<Utc>,
}

impl Arrival {
    pub fn of(c: &Conversation) -> Self {
        Self { conversation_id: c.id, account_id: c.account_id, arrived_at: c.created_at }
    }

    /// The order of the backlog.
    pub fn key(&self) -> (DateTime<Utc>, ConversationId) {
        (self.arrived_at, self.conversation_id)
    }
}

/// A conversation an agent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub arrival: Arrival,
    /// When an agent of this group first took it (kept across transfers between agents): the
    /// start of its handling time.
    pub assigned_at: DateTime<Utc>,
}

/// One agent's desk: who, their cap and presence, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDesk {
    pub id: StaffId,
    pub name: String,
    pub cap: u32,
    pub presence: Presence,
    /// In the order they were taken.
    open: Vec<Held>,
    /// The dispatcher's assignment count when this agent was last given a conversation (0: never).
    last_assignment: u64,
}

impl AgentDesk {
    pub fn open(&self) -> &[Held] {
        &self.open
    }

    pub fn load(&self) -> u32 {
        self.open.len() as u32
    }

    /// Online and under their cap.
    pub fn has_room(&self) -> bool {
        self.presence == Presence::Online && self.load() < self.cap
    }

    pub fn agent_ref(&self) -> AgentRef {
        AgentRef { id: self.id, name: self.name.clone() }
    }
}

/// A conversation given to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub conversation_id: ConversationId,
    pub account_id: AccountId,
    pub agent: AgentRef,
    pub arrived_at: DateTime<Utc>,
    /// The agent it was transferred from; None when it came from the backlog.
    pub transferred_from: Option<StaffId>,
}

/// Why an agent handed a conversation back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequeueReason {
    Away,
    Offline,
    /// Their cap was lowered below their load.
    CapLowered,
    /// They were removed from the group.
    Removed,
}

/// A conversation handed back to the backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    pub conversation_id: ConversationId,
    pub account_id: AccountId,
    pub from: StaffId,
    pub reason: RequeueReason,
}

/// What one operation did, in the order it happened: first the hand-backs, then the assignments
/// (a handed-back conversation may be assigned again in the same operation), then the places in
/// line that changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub requeued: Vec<Requeue>,
    pub assigned: Vec<Assignment>,
    /// Every waiting conversation whose place, estimate or count of online agents changed.
    pub positions: Vec<ChatQueuePosition>,
}

/// A waiting patient's place in their group's backlog (CS-3; live event `chat_queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatQueuePosition {
    pub conversation_id: ConversationId,
    pub account_id: AccountId,
    pub group: GroupCode,
    /// 1 is next.
    pub position: usize,
    /// Conversations ahead (`position - 1`).
    pub ahead: usize,
    /// None while no agent of the group is online.
    pub estimated_wait_minutes: Option<u32>,
    pub agents_online: u32,
}

/// Where a conversation is in this group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the backlog, 1 being next.
    Waiting(usize),
    With(StaffId),
}

/// Why the dispatcher refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("agent {0} is not in this group")]
    UnknownAgent(StaffId),
    #[error("conversation {0} is not in this group")]
    UnknownConversation(ConversationId),
    #[error("conversation {0} is already in this group")]
    AlreadyHere(ConversationId),
    #[error("the conversation is waiting, not with an agent")]
    NotAssigned,
    #[error("the conversation is already with this agent")]
    SameAgent,
    #[error("the agent is not online")]
    AgentNotOnline,
    #[error("the agent already has {cap} conversations, their cap")]
    AgentFull { cap: u32 },
    #[error("the conversation is already in this group")]
    SameGroup,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// One service group's dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatcher {
    group: GroupCode,
    agents: BTreeMap<StaffId, AgentDesk>,
    /// In arrival order (`Arrival::key`).
    backlog: VecDeque<Arrival>,
    /// Assignments made so far (from the backlog and by transfer): the tie-break's clock.
    assignments: u64,
    avg_handling_secs: u32,
    observed: u32,
    /// The place each waiting conversation was last told, so only changes are pushed.
    told: BTreeMap<ConversationId, ChatQueuePosition>,
}

impl Dispatcher {
    pub fn new(group: GroupCode) -> Self {
        Self {
            group,
            agents: BTreeMap::new(),
            backlog: VecDeque::new(),
            assignments: 0,
            avg_handling_secs: DEFAULT_HANDLING_SECS,
            observed: 0,
            told: BTreeMap::new(),
        }
    }

    pub fn group(&self) -> &GroupCode {
        &self.group
    }

    pub fn backlog(&self) -> impl ExactSizeIterator<Item = &Arrival> {
        self.backlog.iter()
    }

    pub fn agents(&self) -> impl Iterator<Item = &AgentDesk> {
        self.agents.values()
    }

    pub fn agent(&self, id: StaffId) -> Option<&AgentDesk> {
        self.agents.get(&id)
    }

    pub fn avg_handling_secs(&self) -> u32 {
        self.avg_handling_secs
    }

    /// Where a conversation is, if it is in this group.
    pub fn place(&self, id: ConversationId) -> Option<Place> {
        if let Some(i) = self.backlog.iter().position(|a| a.conversation_id == id) {
            return Some(Place::Waiting(i + 1));
        }
        self.holder(id).map(Place::With)
    }

    /// The agent holding a conversation.
    pub fn holder(&self, id: ConversationId) -> Option<StaffId> {
        self.agents.values().find(|d| d.open.iter().any(|h| h.arrival.conversation_id == id)).map(|d| d.id)
    }

    /// Adds an agent to the group (offline, with the default cap), or renames one already in it.
    pub fn register_agent(&mut self, id: StaffId, name: &str) -> Result<(), DispatchError> {
        let name = parse_name("name", name)?;
        self.agents.entry(id).and_modify(|d| d.name.clone_from(&name)).or_insert(AgentDesk {
            id,
            name,
            cap: DEFAULT_CAP,
            presence: Presence::Offline,
            open: vec![],
            last_assignment: 0,
        });
        Ok(())
    }

    /// Removes an agent from the group; what they held goes back to the backlog.
    pub fn remove_agent(&mut self, id: StaffId, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        let mut out = Outcome::default();
        let desk = self.agents.get_mut(&id).ok_or(DispatchError::UnknownAgent(id))?;
        let held = std::mem::take(&mut desk.open);
        self.agents.remove(&id);
        self.hand_back(id, held, RequeueReason::Removed, &mut out);
        Ok(self.settle(now, out))
    }

    /// An agent's presence changed. Going away or offline hands everything they hold back to the
    /// head of the backlog, in arrival order; coming online takes from the backlog at once.
    pub fn set_presence(
        &mut self,
        id: StaffId,
        presence: Presence,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DispatchError> {
        let mut out = Outcome::default();
        let desk = self.agents.get_mut(&id).ok_or(DispatchError::UnknownAgent(id))?;
        if desk.presence == presence {
            return Ok(out);
        }
        desk.presence = presence;
        let reason = match presence {
            Presence::Online => None,
            Presence::Away => Some(RequeueReason::Away),
            Presence::Offline => Some(RequeueReason::Offline),
        };
        if let Some(reason) = reason {
            let held = std::mem::take(&mut desk.open);
            self.hand_back(id, held, reason, &mut out);
        }
        Ok(self.settle(now, out))
    }

    /// Sets an agent's cap (1 to `MAX_CAP`). Below their load, their most recently taken
    /// conversations go back to the backlog; above it, they take more at once.
    pub fn set_cap(&mut self, id: StaffId, cap: u32, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        if !(1..=MAX_CAP).contains(&cap) {
            return Err(ValidationError::new("cap", format!("must be 1 to {MAX_CAP}")).into());
        }
        let mut out = Outcome::default();
        let desk = self.agents.get_mut(&id).ok_or(DispatchError::UnknownAgent(id))?;
        desk.cap = cap;
        let excess = desk.open.split_off(desk.open.len().min(cap as usize));
        self.hand_back(id, excess, RequeueReason::CapLowered, &mut out);
        Ok(self.settle(now, out))
    }

    /// A conversation arrives: opened by a patient, or transferred in from another group (with
    /// its original arrival time). It takes its place in line and is assigned if an agent has room.
    pub fn arrive(&mut self, arrival: Arrival, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        if self.place(arrival.conversation_id).is_some() {
            return Err(DispatchError::AlreadyHere(arrival.conversation_id));
        }
        self.enqueue(arrival);
        Ok(self.settle(now, Outcome::default()))
    }

    /// A conversation closed (by the patient, while waiting or with an agent, or by its agent).
    /// Its handling time, if an agent had it, moves the average; its agent's place is refilled.
    pub fn close(&mut self, id: ConversationId, now: DateTime<Utc>) -> Result<Outcome, DispatchError> {
        let (_, held) = self.take(id)?;
        if let Some(assigned_at) = held {
            let secs = (now - assigned_at).num_seconds().clamp(MIN_OBSERVED_SECS, MAX_OBSERVED_SECS) as u64;
            self.avg_handling_secs = moving_average(self.avg_handling_secs, self.observed, secs);
            self.observed = self.observed.saturating_add(1);
        }
        Ok(self.settle(now, Outcome::default()))
    }

    /// Transfers a conversation from its agent to another agent of the group, who must be online
    /// and under their cap. The first agent's place is refilled from the backlog.
    pub fn transfer_to_agent(
        &mut self,
        id: ConversationId,
        to: StaffId,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DispatchError> {
        let target = self.agents.get(&to).ok_or(DispatchError::UnknownAgent(to))?;
        let from = match self.place(id) {
            Some(Place::With(from)) => from,
            Some(Place::Waiting(_)) => return Err(DispatchError::NotAssigned),
            None => return Err(DispatchError::UnknownConversation(id)),
        };
        if from == to {
            return Err(DispatchError::SameAgent);
        }
        if target.presence != Presence::Online {
            return Err(DispatchError::AgentNotOnline);
        }
        if target.load() >= target.cap {
            return Err(DispatchError::AgentFull { cap: target.cap });
        }
        let source = self.agents.get_mut(&from).expect("the holder is an agent");
        let i = source.open.iter().position(|h| h.arrival.conversation_id == id).expect("held");
        let held = source.open.remove(i);
        let mut out = Outcome::default();
        self.assignments += 1;
        let target = self.agents.get_mut(&to).expect("checked above");
        target.last_assignment = self.assignments;
        out.assigned.push(Assignment {
            conversation_id: id,
            account_id: held.arrival.account_id,
            agent: target.agent_ref(),
            arrived_at: held.arrival.arrived_at,
            transferred_from: Some(from),
        });
        target.open.push(held);
        Ok(self.settle(now, out))
    }

    /// Transfers a conversation to another group: it leaves this one (from the backlog or from
    /// its agent, whose place is refilled) and the returned arrival, with its original arrival
    /// time, is what the other group's dispatcher is to `arrive`.
    pub fn transfer_out(
        &mut self,
        id: ConversationId,
        to: &GroupCode,
        now: DateTime<Utc>,
    ) -> Result<(Arrival, Outcome), DispatchError> {
        if *to == self.group {
            return Err(DispatchError::SameGroup);
        }
        let (arrival, _) = self.take(id)?;
        Ok((arrival, self.settle(now, Outcome::default())))
    }

    /// Every waiting conversation's place and estimated wait (see the module's formula).
    pub fn positions(&self) -> Vec<ChatQueuePosition> {
        let online: Vec<&AgentDesk> = self.agents.values().filter(|d| d.presence == Presence::Online).collect();
        let capacity: u64 = online.iter().map(|d| u64::from(d.cap)).sum();
        let handling = u64::from(self.avg_handling_secs);
        self.backlog
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let p = i as u64 + 1;
                let estimated =
                    (capacity > 0).then(|| u32::try_from((p * handling).div_ceil(capacity * 60)).unwrap_or(u32::MAX));
                ChatQueuePosition {
                    conversation_id: a.conversation_id,
                    account_id: a.account_id,
                    group: self.group.clone(),
                    position: i + 1,
                    ahead: i,
                    estimated_wait_minutes: estimated,
                    agents_online: online.len() as u32,
                }
            })
            .collect()
    }

    /// Removes a conversation from wherever it is here: its arrival, and when an agent held it,
    /// since when.
    fn take(&mut self, id: ConversationId) -> Result<(Arrival, Option<DateTime<Utc>>), DispatchError> {
        if let Some(i) = self.backlog.iter().position(|a| a.conversation_id == id) {
            let a = self.backlog.remove(i).expect("found");
            return Ok((a, None));
        }
        for desk in self.agents.values_mut() {
            if let Some(i) = desk.open.iter().position(|h| h.arrival.conversation_id == id) {
                let h = desk.open.remove(i);
                return Ok((h.arrival, Some(h.assigned_at)));
            }
        }
        Err(DispatchError::UnknownConversation(id))
    }

    /// Puts a conversation in line at its arrival time.
    fn enqueue(&mut self, a: Arrival) {
        let key = a.key();
        let at = self.backlog.iter().position(|w| w.key() > key).unwrap_or(self.backlog.len());
        self.backlog.insert(at, a);
    }

    fn hand_back(&mut self, from: StaffId, mut held: Vec<Held>, reason: RequeueReason, out: &mut Outcome) {
        held.sort_by_key(|h| h.arrival.key());
        for h in held {
            out.requeued.push(Requeue {
                conversation_id: h.arrival.conversation_id,
                account_id: h.arrival.account_id,
                from,
                reason,
            });
            self.enqueue(h.arrival);
        }
    }

    /// The agent to give the next conversation to (see the module's rule).
    fn pick(&self) -> Option<StaffId> {
        self.agents.values().filter(|d| d.has_room()).min_by_key(|d| (d.load(), d.last_assignment, d.id)).map(|d| d.id)
    }

    /// Ends every operation: serves the backlog while anyone has room, then notes the places in
    /// line that changed.
    fn settle(&mut self, now: DateTime<Utc>, mut out: Outcome) -> Outcome {
        while !self.backlog.is_empty() {
            let Some(to) = self.pick() else { break };
            let arrival = self.backlog.pop_front().expect("not empty");
            self.assignments += 1;
            let desk = self.agents.get_mut(&to).expect("picked");
            desk.last_assignment = self.assignments;
            out.assigned.push(Assignment {
                conversation_id: arrival.conversation_id,
                account_id: arrival.account_id,
                agent: desk.agent_ref(),
                arrived_at: arrival.arrived_at,
                transferred_from: None,
            });
            desk.open.push(Held { arrival, assigned_at: now });
        }
        let positions = self.positions();
        let waiting: BTreeSet<ConversationId> = positions.iter().map(|p| p.conversation_id).collect();
        self.told.retain(|id, _| waiting.contains(id));
        for p in positions {
            if self.told.get(&p.conversation_id) != Some(&p) {
                self.told.insert(p.conversation_id, p.clone());
                out.positions.push(p);
            }
        }
        out
    }

    /// The dispatcher's invariant, for tests: no agent over cap and none away or offline holding
    /// anything; every conversation in exactly one place; the backlog in arrival order; work
    /// conserved (nobody waits while an online agent has room); places told only for waiting
    /// conversations.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for d in self.agents.values() {
            if !(1..=MAX_CAP).contains(&d.cap) {
                return Err(format!("agent {} has cap {}", d.name, d.cap));
            }
            if d.load() > d.cap {
                return Err(format!("agent {} holds {} over their cap {}", d.name, d.load(), d.cap));
            }
            if d.presence != Presence::Online && !d.open.is_empty() {
                return Err(format!("agent {} is {:?} and holds {}", d.name, d.presence, d.load()));
            }
            if d.last_assignment > self.assignments {
                return Err(format!("agent {} was assigned in the future", d.name));
            }
            for h in &d.open {
                if !seen.insert(h.arrival.conversation_id) {
                    return Err(format!("conversation {} is in two places", h.arrival.conversation_id));
                }
            }
        }
        for a in &self.backlog {
            if !seen.insert(a.conversation_id) {
                return Err(format!("conversation {} is in two places", a.conversation_id));
            }
        }
        if let Some(w) = self.backlog.iter().zip(self.backlog.iter().skip(1)).find(|(a, b)| a.key() >= b.key()) {
            return Err(format!("the backlog is out of arrival order at {}", w.1.conversation_id));
        }
        if !self.backlog.is_empty() {
            if let Some(d) = self.agents.values().find(|d| d.has_room()) {
                return Err(format!("{} wait while agent {} has room", self.backlog.len(), d.name));
            }
        }
        if let Some(id) = self.told.keys().find(|id| !self.backlog.iter().any(|a| a.conversation_id == **id)) {
            return Err(format!("a place is remembered for {id}, which is not waiting"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use uuid::Uuid;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn group(code: &str) -> GroupCode {
        GroupCode::parse(code).unwrap()
    }

    /// Ids whose order is their number, so ties in time are easy to read.
    fn staff(n: u128) -> StaffId {
        StaffId(Uuid::from_u128(n))
    }

    fn arrival(n: u128, minute: i64) -> Arrival {
        Arrival {
            conversation_id: ConversationId(Uuid::from_u128(n)),
            account_id: AccountId(Uuid::from_u128(1000 + n)),
            arrived_at: t0() + Duration::minutes(minute),
        }
    }

    fn cid(n: u128) -> ConversationId {
        ConversationId(Uuid::from_u128(n))
    }

    fn assigned(out: &Outcome) -> Vec<(u128, u128)> {
        out.assigned.iter().map(|a| (a.conversation_id.0.as_u128(), a.agent.id.0.as_u128())).collect()
    }

    fn backlog(d: &Dispatcher) -> Vec<u128> {
        d.backlog().map(|a| a.conversation_id.0.as_u128()).collect()
    }

    fn online(d: &mut Dispatcher, n: u128, cap: u32) {
        d.register_agent(staff(n), &format!("客服{n}")).unwrap();
        d.set_cap(staff(n), cap, t0()).unwrap();
        d.set_presence(staff(n), Presence::Online, t0()).unwrap();
    }

    #[test]
    fn fewest_open_then_least_recently_assigned_then_id() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 2, 5);
        online(&mut d, 1, 5);
        let mut got = vec![];
        for n in 1..=5 {
            got.extend(assigned(&d.arrive(arrival(n, n as i64), t0()).unwrap()));
            d.check_invariants().unwrap();
        }
        // Both empty: the smaller id first; then the other (fewer open); then alternating.
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 1), (4, 2), (5, 1)]);
        // Agent 1 closes two: now 1 holds 1, 2 holds 2; the next goes to 1.
        d.close(cid(1), t0()).unwrap();
        d.close(cid(3), t0()).unwrap();
        assert_eq!(assigned(&d.arrive(arrival(6, 6), t0()).unwrap()), vec![(6, 1)]);
        // Tied at 2 each: agent 2 was given one least recently.
        assert_eq!(assigned(&d.arrive(arrival(7, 7), t0()).unwrap()), vec![(7, 2)]);
        d.check_invariants().unwrap();
    }

    #[test]
    fn backlog_served_in_arrival_order_with_places_and_estimates() {
        let mut d = Dispatcher::new(group("reports"));
        // Nobody online: everyone waits, with no estimate.
        let mut last = Outcome::default();
        for n in [3, 1, 2] {
            last = d.arrive(arrival(n, n as i64), t0()).unwrap();
        }
        assert_eq!(backlog(&d), vec![1, 2, 3], "arrival order, whatever order they were added in");
        // Adding 2 (minute 2) moved 3 back: both 2 and 3 were told.
        let told: Vec<(u128, usize)> =
            last.positions.iter().map(|p| (p.conversation_id.0.as_u128(), p.position)).collect();
        assert_eq!(told, vec![(2, 2), (3, 3)]);
        assert!(d.positions().iter().all(|p| p.estimated_wait_minutes.is_none() && p.agents_online == 0));

        // One agent with cap 1 comes online: takes the head; the rest move up, with estimates:
        // H = 6 minutes, C = 1, so ceil(p * 6 / 1).
        d.register_agent(staff(1), "小王").unwrap();
        d.set_cap(staff(1), 1, t0()).unwrap();
        let out = d.set_presence(staff(1), Presence::Online, t0()).unwrap();
        assert_eq!(assigned(&out), vec![(1, 1)]);
        let p: Vec<(u128, usize, Option<u32>)> = out
            .positions
            .iter()
            .map(|p| (p.conversation_id.0.as_u128(), p.position, p.estimated_wait_minutes))
            .collect();
        assert_eq!(p, vec![(2, 1, Some(6)), (3, 2, Some(12))]);
        // Raising the cap to 4: C = 4, both assigned at once, in order.
        let out = d.set_cap(staff(1), 4, t0()).unwrap();
        assert_eq!(assigned(&out), vec![(2, 1), (3, 1)]);
        assert!(out.positions.is_empty());
        d.check_invariants().unwrap();

        // An operation that changes nobody's place pushes nothing.
        d.register_agent(staff(2), "小李").unwrap();
        let out = d.set_presence(staff(2), Presence::Away, t0()).unwrap();
        assert_eq!(out, Outcome::default());
    }

    #[test]
    fn estimates_follow_handling_time_and_capacity() {
        let mut d = Dispatcher::new(group("billing"));
        online(&mut d, 1, 1);
        online(&mut d, 2, 1);
        d.arrive(arrival(1, 0), t0()).unwrap();
        d.arrive(arrival(2, 0), t0()).unwrap();
        for n in 3..=5 {
            d.arrive(arrival(n, 1), t0()).unwrap();
        }
        // C = 2, H = 360 s: positions 1, 2, 3 wait 3, 6, 9 minutes.
        let w: Vec<Option<u32>> = d.positions().iter().map(|p| p.estimated_wait_minutes).collect();
        assert_eq!(w, vec![Some(3), Some(6), Some(9)]);
        // The first close observed 10 minutes: it replaces the default. Then C = 2, H = 600 s.
        let out = d.close(cid(1), t0() + Duration::minutes(10)).unwrap();
        assert_eq!(d.avg_handling_secs(), 600);
        assert_eq!(assigned(&out), vec![(3, 1)]);
        let w: Vec<Option<u32>> = out.positions.iter().map(|p| p.estimated_wait_minutes).collect();
        assert_eq!(w, vec![Some(5), Some(10)]);
        // A chat left open for a day counts as an hour: 600 * 3/4 + 3600 / 4 = 1350.
        d.close(cid(2), t0() + Duration::days(1)).unwrap();
        assert_eq!(d.avg_handling_secs(), 1350);
        // A waiting patient giving up is not a handling time.
        d.close(cid(5), t0() + Duration::days(1)).unwrap();
        assert_eq!(d.avg_handling_secs(), 1350);
        d.check_invariants().unwrap();
    }

    #[test]
    fn going_away_hands_back_to_the_head_in_arrival_order() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 1, 3);
        online(&mut d, 2, 1);
        for n in 1..=6 {
            d.arrive(arrival(n, n as i64), t0()).unwrap();
        }
        // Agent 1: 1, 3, 4; agent 2: 2; waiting: 5, 6.
        assert_eq!(d.holder(cid(4)), Some(staff(1)));
        assert_eq!(backlog(&d), vec![5, 6]);
        let out = d.set_presence(staff(1), Presence::Away, t0()).unwrap();
        let back: Vec<(u128, RequeueReason)> =
            out.requeued.iter().map(|r| (r.conversation_id.0.as_u128(), r.reason)).collect();
        assert_eq!(back, vec![(1, RequeueReason::Away), (3, RequeueReason::Away), (4, RequeueReason::Away)]);
        assert_eq!(backlog(&d), vec![1, 3, 4, 5, 6], "at the head, not the tail");
        assert!(out.assigned.is_empty(), "agent 2 is full");
        // Agent 2 closes theirs: the head (1) is next, not 5.
        assert_eq!(assigned(&d.close(cid(2), t0()).unwrap()), vec![(1, 2)]);
        assert_eq!(d.place(cid(3)), Some(Place::Waiting(1)));
        // Offline after away changes nothing more.
        assert_eq!(d.set_presence(staff(1), Presence::Offline, t0()).unwrap().requeued, vec![]);
        d.check_invariants().unwrap();
    }

    #[test]
    fn lowering_a_cap_hands_back_the_latest_taken() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 1, 3);
        for n in 1..=4 {
            d.arrive(arrival(n, n as i64), t0()).unwrap();
        }
        let out = d.set_cap(staff(1), 1, t0()).unwrap();
        let back: Vec<u128> = out.requeued.iter().map(|r| r.conversation_id.0.as_u128()).collect();
        assert_eq!(back, vec![2, 3]);
        assert_eq!(backlog(&d), vec![2, 3, 4]);
        assert_eq!(d.agent(staff(1)).unwrap().load(), 1);
        assert!(matches!(d.set_cap(staff(1), 0, t0()), Err(DispatchError::Invalid(_))));
        assert!(matches!(d.set_cap(staff(1), MAX_CAP + 1, t0()), Err(DispatchError::Invalid(_))));
        assert_eq!(d.set_cap(staff(9), 2, t0()), Err(DispatchError::UnknownAgent(staff(9))));
        d.check_invariants().unwrap();
    }

    #[test]
    fn transfers() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 1, 1);
        online(&mut d, 2, 1);
        d.arrive(arrival(1, 1), t0()).unwrap();
        d.arrive(arrival(2, 2), t0()).unwrap();
        d.arrive(arrival(3, 3), t0()).unwrap();
        assert_eq!(d.transfer_to_agent(cid(1), staff(2), t0()), Err(DispatchError::AgentFull { cap: 1 }));
        assert_eq!(d.transfer_to_agent(cid(3), staff(2), t0()), Err(DispatchError::NotAssigned));
        assert_eq!(d.transfer_to_agent(cid(1), staff(1), t0()), Err(DispatchError::SameAgent));
        assert_eq!(d.transfer_to_agent(cid(9), staff(2), t0()), Err(DispatchError::UnknownConversation(cid(9))));
        d.register_agent(staff(3), "小张").unwrap();
        assert_eq!(d.transfer_to_agent(cid(1), staff(3), t0()), Err(DispatchError::AgentNotOnline));
        d.set_presence(staff(3), Presence::Online, t0()).unwrap();
        // Agent 3 came online and took 3; with a cap of 2 they have room for 1 more.
        assert_eq!(d.holder(cid(3)), Some(staff(3)));
        d.set_cap(staff(3), 2, t0()).unwrap();
        let out = d.transfer_to_agent(cid(1), staff(3), t0()).unwrap();
        assert_eq!(out.assigned[0].transferred_from, Some(staff(1)));
        assert_eq!(d.holder(cid(1)), Some(staff(3)));

        // To another group: it leaves with its arrival time and lines up there by it.
        let mut other = Dispatcher::new(group("billing"));
        other.arrive(arrival(10, 0), t0()).unwrap();
        other.arrive(arrival(11, 5), t0()).unwrap();
        assert_eq!(d.transfer_out(cid(2), &group("booking"), t0()).unwrap_err(), DispatchError::SameGroup);
        let (a, _) = d.transfer_out(cid(2), &group("billing"), t0()).unwrap();
        assert_eq!(a.arrived_at, t0() + Duration::minutes(2));
        assert_eq!(d.place(cid(2)), None);
        let out = other.arrive(a.clone(), t0()).unwrap();
        assert_eq!(backlog(&other), vec![10, 2, 11], "after who opened before it, before who opened after");
        assert_eq!(out.positions.len(), 2, "it and the one it passed are told");
        assert_eq!(other.arrive(a, t0()), Err(DispatchError::AlreadyHere(cid(2))));
        d.check_invariants().unwrap();
        other.check_invariants().unwrap();
    }

    #[test]
    fn removing_an_agent_hands_back() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 1, 2);
        d.arrive(arrival(1, 1), t0()).unwrap();
        let out = d.remove_agent(staff(1), t0()).unwrap();
        assert_eq!(out.requeued[0].reason, RequeueReason::Removed);
        assert_eq!(backlog(&d), vec![1]);
        assert!(d.agent(staff(1)).is_none());
        assert!(d.register_agent(staff(2), " ").is_err());
        d.check_invariants().unwrap();
    }

    #[test]
    fn stored_and_read_back() {
        let mut d = Dispatcher::new(group("booking"));
        online(&mut d, 1, 1);
        d.arrive(arrival(1, 1), t0()).unwrap();
        d.arrive(arrival(2, 2), t0()).unwrap();
        let back: Dispatcher = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        let back: Dispatcher = rmp_serde::from_slice(&rmp_serde::to_vec_named(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
