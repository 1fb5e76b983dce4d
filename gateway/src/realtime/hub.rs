//! This node's side of fan-out: personal events go to the account's patient actor (which holds the
//! account's sockets here); topic updates go straight to the sockets subscribed to the topic,
//! through an index kept here, because a popular doctor's topic may have thousands of subscribers
//! and they should not all be messaged one actor at a time.

use hospital_actors::{ActorSystem, LiveEvent, PatientMsg};
use hospital_domain::AccountId;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

use super::socket::{Prepared, SocketShared};

pub struct Hub {
    actors: ActorSystem,
    topics: RwLock<HashMap<String, HashMap<u64, Weak<SocketShared>>>>,
}

impl Hub {
    pub fn new(actors: ActorSystem) -> Self {
        Self { actors, topics: RwLock::new(HashMap::new()) }
    }

    pub fn actors(&self) -> &ActorSystem {
        &self.actors
    }

    /// Hands a personal event to the account's actor, if this node has one (no actor: no
    /// sockets of that account here).
    pub fn deliver_personal(&self, account: AccountId, event: Arc<LiveEvent>) {
        if let Some(actor) = self.actors.running_patient(account) {
            let _ = actor.cast(PatientMsg::Deliver { event });
        }
    }

    /// Offers a topic update to every socket subscribed to it here (latest value wins there).
    pub fn deliver_topic(&self, topic: &str, event: Arc<LiveEvent>) {
        let subs: Vec<Arc<SocketShared>> = {
            let map = self.topics.read().expect("topic index");
            map.get(topic).map(|s| s.values().filter_map(Weak::upgrade).collect()).unwrap_or_default()
        };
        if subs.is_empty() {
            return;
        }
        // Encoded once (per encoding in use), shared by every subscriber.
        let prepared = Prepared::new(event);
        for s in subs {
            s.offer_topic(topic, prepared.clone());
        }
    }

    pub fn subscribe(&self, topic: &str, socket: &Arc<SocketShared>) {
        self.topics
            .write()
            .expect("topic index")
            .entry(topic.to_string())
            .or_default()
            .insert(socket.id, Arc::downgrade(socket));
    }

    pub fn unsubscribe(&self, topic: &str, socket: u64) {
        let mut map = self.topics.write().expect("topic index");
        if let Some(subs) = map.get_mut(topic) {
            subs.remove(&socket);
            if subs.is_empty() {
                map.remove(topic);
            }
        }
    }
}
