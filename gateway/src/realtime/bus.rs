//! The `EventBus` actors publish to. A personal event is numbered and stored in the account's
//! `EventLog`, then fanned out; a topic update is fanned out as it is. Fan-out is local on one
//! machine, or through Redis pub/sub when several gateway nodes share a Redis: every node
//! subscribes to one channel and delivers what concerns its own sockets (PLAT-4).
//!
//! Order: personal events of one account are handled by one worker (accounts are spread over a
//! few workers by hash), so they are numbered and published in the order they were published,
//! while different accounts proceed in parallel and share the store's group commits.

use hospital_actors::{EventBus, LiveEvent};
use hospital_domain::AccountId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::hub::Hub;
use super::log::EventLog;

const WORKERS: usize = 8;

/// What travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    account: Option<AccountId>,
    event: LiveEvent,
}

enum Job {
    Personal(AccountId, LiveEvent),
    Topic(LiveEvent),
}

#[derive(Clone)]
pub enum Fanout {
    /// One node: deliver here.
    Local,
    /// Several nodes: publish on the channel; every node (this one too) delivers what it receives.
    Redis { conn: redis::aio::ConnectionManager, channel: String },
}

pub struct Bus {
    workers: Vec<mpsc::UnboundedSender<Job>>,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Bus {
    pub fn start(log: EventLog, hub: Arc<Hub>, fanout: Fanout) -> Arc<Bus> {
        let mut workers = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let (log, hub, fanout) = (log.clone(), hub.clone(), fanout.clone());
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    let (account, event) = match job {
                        Job::Personal(account, e) => match log.append(account, e).await {
                            Ok(e) => (Some(account), e),
                            Err(e) => {
                                tracing::warn!(error = %e, "event log append failed; event dropped");
                                metrics::counter!("ws_drops_total", "reason" => "log_failed").increment(1);
                                continue;
                            }
                        },
                        Job::Topic(e) => (None, e),
                    };
                    match &fanout {
                        Fanout::Local => deliver(&hub, account, Arc::new(event)),
                        Fanout::Redis { conn, channel } => {
                            let body = serde_json::to_vec(&Wire { account, event }).expect("events serialise");
                            let r: Result<i64, _> =
                                redis::cmd("PUBLISH").arg(channel).arg(body).query_async(&mut conn.clone()).await;
                            if let Err(e) = r {
                                // The event is in the log: a client resuming will still get it.
                                tracing::warn!(error = %e, "publishing an event to Redis failed");
                            }
                        }
                    }
                }
            });
            workers.push(tx);
        }
        Arc::new(Bus { workers })
    }

    fn worker(&self, key: &[u8]) -> &mpsc::UnboundedSender<Job> {
        let h = key.iter().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(*b as usize));
        &self.workers[h % self.workers.len()]
    }
}

fn deliver(hub: &Hub, account: Option<AccountId>, event: Arc<LiveEvent>) {
    match (account, &event.topic) {
        (Some(a), _) => hub.deliver_personal(a, event),
        (None, Some(t)) => hub.deliver_topic(&t.clone(), event),
        (None, None) => {}
    }
}

impl EventBus for Bus {
    fn personal(&self, account: AccountId, kind: &str, payload: serde_json::Value) {
        let e = LiveEvent { seq: None, kind: kind.into(), topic: None, payload, at_ms: now_ms() };
        let _ = self.worker(account.0.as_bytes()).send(Job::Personal(account, e));
    }

    fn topic(&self, topic: &str, kind: &str, payload: serde_json::Value) {
        let e = LiveEvent { seq: None, kind: kind.into(), topic: Some(topic.into()), payload, at_ms: now_ms() };
        let _ = self.worker(topic.as_bytes()).send(Job::Topic(e));
    }
}

/// Receives what every node publishes and delivers it to this node's sockets. Reconnects with a
/// back-off when Redis goes away (events published meanwhile are in the log: resume finds them).
pub async fn subscribe_redis(url: String, channel: String, hub: Arc<Hub>) {
    use futures::StreamExt;
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        let result: Result<(), redis::RedisError> = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            tracing::info!(%channel, "subscribed to the event channel");
            let mut stream = pubsub.on_message();
            while let Some(msg) = stream.next().await {
                let body: Vec<u8> = msg.get_payload()?;
                match serde_json::from_slice::<Wire>(&body) {
                    Ok(w) => deliver(&hub, w.account, Arc::new(w.event)),
                    Err(e) => tracing::warn!(error = %e, "undecodable event on the channel"),
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "event channel lost; reconnecting");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}
