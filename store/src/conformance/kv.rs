//! The ephemeral key-value contract and login sessions over it.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::*;
use std::sync::Arc;
use std::time::Duration;

use super::samples::*;
use crate::model::*;
use crate::sessions::SessionStore;
use crate::traits::EphemeralKv;

/// The ephemeral key-value contract, TTLs included (it sleeps about a second).
pub async fn ephemeral_kv(kv: Arc<dyn EphemeralKv>) {
    let k = unique("k");
    assert_eq!(kv.get(&k).await.unwrap(), None);
    kv.put(&k, b"v1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(kv.get(&k).await.unwrap().as_deref(), Some(&b"v1"[..]));
    let ttl = kv.ttl(&k).await.unwrap().unwrap();
    assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(50), "ttl {ttl:?}");
    assert!(!kv.put_if_absent(&k, b"v2", Duration::from_secs(60)).await.unwrap(), "NX refuses an existing key");
    assert_eq!(kv.take(&k).await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(kv.take(&k).await.unwrap(), None, "take is single-use");
    assert!(kv.put_if_absent(&k, b"v3", Duration::from_secs(60)).await.unwrap());
    kv.delete(&k).await.unwrap();
    assert_eq!(kv.ttl(&k).await.unwrap(), None);

    // Only one of many concurrent takers gets the value.
    let t = unique("t");
    kv.put(&t, b"once", Duration::from_secs(60)).await.unwrap();
    let takers: Vec<_> = (0..20)
        .map(|_| {
            let kv = kv.clone();
            let t = t.clone();
            tokio::spawn(async move { kv.take(&t).await.unwrap() })
        })
        .collect();
    let mut got = 0;
    for h in takers {
        got += usize::from(h.await.unwrap().is_some());
    }
    assert_eq!(got, 1, "exactly one taker wins");

    // Counters: atomic under concurrency, expiry set once.
    let c = unique("c");
    let incs: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            let c = c.clone();
            tokio::spawn(async move { kv.incr(&c, Duration::from_secs(30)).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for h in incs {
        seen.push(h.await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<i64>>(), "every increment counted once");
    assert!(kv.ttl(&c).await.unwrap().unwrap() <= Duration::from_secs(30));

    // Sets.
    let s = unique("s");
    kv.set_add(&s, "m1", Duration::from_secs(60)).await.unwrap();
    kv.set_add(&s, "m2", Duration::from_secs(60)).await.unwrap();
    kv.set_add(&s, "m1", Duration::from_secs(60)).await.unwrap();
    let mut m = kv.set_members(&s).await.unwrap();
    m.sort();
    assert_eq!(m, vec!["m1".to_string(), "m2".to_string()]);
    kv.set_remove(&s, "m1").await.unwrap();
    assert_eq!(kv.set_members(&s).await.unwrap(), vec!["m2".to_string()]);

    // A log: numbers without holes, each value with its number, each event id once, even under
    // concurrent appends.
    let stream = unique("log");
    assert_eq!(kv.log_head(&stream).await.unwrap(), 0);
    let appends: Vec<_> = (0..30)
        .map(|i| {
            let (kv, stream) = (kv.clone(), stream.clone());
            tokio::spawn(async move {
                let id = format!("{stream}-ev{}", i % 20);
                kv.log_append_all(&stream, &[(&id, id.as_bytes())], Duration::from_secs(60)).await.unwrap()[0]
            })
        })
        .collect();
    let mut fresh = Vec::new();
    for h in appends {
        let (n, is_fresh) = h.await.unwrap();
        if is_fresh {
            fresh.push(n);
        }
    }
    fresh.sort();
    assert_eq!(fresh, (1..=20).collect::<Vec<u64>>(), "20 distinct ids, numbered 1..=20 once each");
    assert_eq!(kv.log_head(&stream).await.unwrap(), 20);
    let values = kv.log_range(&stream, 1, 20).await.unwrap();
    assert!(values.iter().all(|v| v.is_some()), "every number has its value");
    let ev3 = format!("{stream}-ev3");
    let again = kv.log_append_all(&stream, &[(&ev3, b"x")], Duration::from_secs(60)).await.unwrap()[0];
    assert!(!again.1 && values[again.0 as usize - 1].as_deref() == Some(format!("{stream}-ev3").as_bytes()));
    assert_eq!(kv.log_range(&stream, 21, 22).await.unwrap(), vec![None, None], "past the head: nothing");
    // Several at once: numbered after the rest in their order; an id seen before (earlier in
    // the same list too) keeps its first number and takes none.
    let (m1, m2) = (format!("{stream}-m1"), format!("{stream}-m2"));
    let items: [(&str, &[u8]); 4] = [(&m1, b"one"), (&ev3, b"y"), (&m2, b"two"), (&m1, b"z")];
    let got = kv.log_append_all(&stream, &items, Duration::from_secs(60)).await.unwrap();
    assert_eq!(got, vec![(21, true), (again.0, false), (22, true), (21, false)]);
    assert_eq!(kv.log_head(&stream).await.unwrap(), 22);
    let values = kv.log_range(&stream, 21, 22).await.unwrap();
    assert_eq!(values, vec![Some(b"one".to_vec()), Some(b"two".to_vec())], "each value under its number");
    assert_eq!(kv.log_append_all(&stream, &[], Duration::from_secs(60)).await.unwrap(), vec![]);
    // A stream's first append (no counter yet) with an id twice in it: numbered once.
    let first = unique("log-first");
    let x = format!("{first}-x");
    let y = format!("{first}-y");
    let items: [(&str, &[u8]); 3] = [(&x, b"x"), (&x, b"again"), (&y, b"y")];
    let got = kv.log_append_all(&first, &items, Duration::from_secs(60)).await.unwrap();
    assert_eq!(got, vec![(1, true), (1, false), (2, true)]);
    assert_eq!(kv.log_range(&first, 1, 2).await.unwrap(), vec![Some(b"x".to_vec()), Some(b"y".to_vec())]);
    assert_eq!(kv.log_head(&first).await.unwrap(), 2);

    // Expiry.
    let e = unique("e");
    kv.put(&e, b"short", Duration::from_millis(300)).await.unwrap();
    kv.incr(&format!("{e}-n"), Duration::from_millis(300)).await.unwrap();
    kv.set_add(&format!("{e}-s"), "x", Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(kv.get(&e).await.unwrap(), None, "expired keys are gone");
    assert_eq!(kv.incr(&format!("{e}-n"), Duration::from_secs(5)).await.unwrap(), 1, "an expired counter restarts");
    assert!(kv.set_members(&format!("{e}-s")).await.unwrap().is_empty(), "an expired set is empty");
    kv.ping().await.unwrap();
}

/// Login sessions over a kv: idle timeout, absolute expiry, logout, revoke all.
pub async fn sessions(kv: Arc<dyn EphemeralKv>) {
    let store = SessionStore::new(kv);
    let subject = Subject::Account { id: AccountId::new() };
    let now = Utc::now();
    let mk = |hash: &str, idle: u64, life: i64| LoginSession {
        token_hash: hash.to_string(),
        subject: subject.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + ChronoDuration::seconds(life),
        idle_timeout_secs: idle,
        device: Some("test".into()),
    };
    let a = mk(&unique("h"), 600, 3600);
    let b = mk(&unique("h"), 600, 3600);
    store.create(&a, now).await.unwrap();
    store.create(&b, now).await.unwrap();
    assert!(store.get(&a.token_hash, now).await.unwrap().is_some());
    assert_eq!(store.list(&subject, now).await.unwrap().len(), 2, "two devices");

    // Idle: not used for longer than the idle timeout.
    let later = now + ChronoDuration::seconds(601);
    assert!(store.get(&a.token_hash, later).await.unwrap().is_none(), "idle session ended");
    // Touching pushes the idle end out, but never past the absolute expiry.
    let touched = store.touch(&a, now + ChronoDuration::seconds(500)).await.unwrap();
    assert!(store.get(&a.token_hash, later).await.unwrap().is_some(), "touched session lives on");
    let past_abs = now + ChronoDuration::seconds(3601);
    let mut t = touched.clone();
    t.last_seen_at = now + ChronoDuration::seconds(3500);
    assert!(!t.is_live(past_abs), "absolute expiry wins over activity");

    store.delete(&a).await.unwrap();
    assert!(store.get(&a.token_hash, now).await.unwrap().is_none(), "logged out");
    assert_eq!(store.delete_all(&subject, now).await.unwrap(), 1);
    assert!(store.get(&b.token_hash, now).await.unwrap().is_none(), "revoked everywhere");
    assert!(store.list(&subject, now).await.unwrap().is_empty());
}
