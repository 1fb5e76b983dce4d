//! The audit log.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::*;
use std::sync::Arc;

use super::samples::*;
use crate::error::Conflict;
use crate::traits::DataStore;
use crate::StoreError;

/// The audit log: appends continue the head or are refused (a second writer, a gap, a forged
/// link), a retried append is accepted once more, the chain reads back in seq order and
/// verifies, every index finds its entries newest first in pages, the writer serialises
/// concurrent callers into one chain and refuses to fork it, and exports carry every entry.
pub async fn audit(store: Arc<dyn DataStore>) {
    use crate::audit::{
        export, search, verify_chain, AuditCursor, AuditIndex, AuditLog, AuditQuery, AuditStore, ExportFormat,
    };
    use hospital_domain::audit::{Action, Actor, AuditEntry, AuditEvent, Bucket, Outcome, Target, GENESIS_HASH};
    let audit: Arc<dyn AuditStore> = store.clone();
    let chain = unique("chain");
    assert_eq!(audit.audit_head(&chain).await.unwrap(), None);

    // A past hour no other suite writes to (suites may share one backend).
    let base =
        chrono::DateTime::from_timestamp(946_684_800 + (uuid::Uuid::new_v4().as_u128() % 100_000_000) as i64 * 3600, 0)
            .unwrap();
    let doctor = StaffId::new();
    let nurse = StaffId::new();
    let patient_account = AccountId::new();
    let ev = |staff: StaffId, action: &str, account: Option<AccountId>| {
        let mut e = AuditEvent::new(
            Actor::Staff { id: staff, roles: vec![Role::Doctor.into()] },
            Action::parse(action).unwrap(),
            Target::new("record", "r-1").unwrap(),
        )
        .from_ip(Some("10.0.0.7".parse().unwrap()));
        if let Some(a) = account {
            e = e.concerning(a, None).purpose("treatment").unwrap();
        }
        e
    };
    let events = [
        ev(doctor, "record.read", Some(patient_account)),
        ev(nurse, "record.read", Some(patient_account)),
        ev(doctor, "staff.create", None),
        ev(doctor, "record.read", Some(patient_account)),
        ev(nurse, "report.read", Some(AccountId::new())),
    ];
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let prev = entries.last().map_or(GENESIS_HASH.to_string(), |p| p.hash.clone());
        let at = base + ChronoDuration::minutes(20 * i as i64); // spans two hour buckets
        entries.push(AuditEntry::seal(&chain, i as u64 + 1, &prev, at, e.clone()));
    }
    audit.append_audit(&entries[..3]).await.unwrap();
    audit.append_audit(&entries[3..]).await.unwrap();
    let head = audit.audit_head(&chain).await.unwrap().expect("a head");
    assert_eq!((head.seq, head.hash.as_str(), head.first_at), (5, entries[4].hash.as_str(), entries[0].at));
    assert!(audit.audit_heads().await.unwrap().iter().any(|h| h.chain == chain));

    // Retrying an acknowledged append changes nothing.
    audit.append_audit(&entries[3..]).await.unwrap();
    assert_eq!(audit.audit_head(&chain).await.unwrap().unwrap().seq, 5);

    // Refusals: a different entry under a taken seq, a gap, a forged link, a foreign chain.
    let mut forked = entries[4].clone();
    forked.event.outcome = Outcome::Denied;
    forked.hash = forked.compute_hash();
    let gap = AuditEntry::seal(&chain, 7, &entries[4].hash, base + ChronoDuration::hours(2), events[0].clone());
    let forged = AuditEntry::seal(&chain, 6, &entries[2].hash, base + ChronoDuration::hours(2), events[0].clone());
    let mut unhashed =
        AuditEntry::seal(&chain, 6, &entries[4].hash, base + ChronoDuration::hours(2), events[0].clone());
    unhashed.event.purpose = Some("changed after sealing".into());
    for bad in [vec![forked], vec![gap], vec![forged], vec![unhashed]] {
        assert!(
            matches!(audit.append_audit(&bad).await, Err(StoreError::Conflict(Conflict::AuditChain))),
            "refused: seq {}",
            bad[0].seq
        );
    }
    assert_eq!(audit.audit_head(&chain).await.unwrap().unwrap().seq, 5, "a refused append writes nothing");

    // The chain, by hour, in seq order; and it verifies.
    let mut walked = Vec::new();
    for hour in Bucket::Hour.of(entries[0].at)..=Bucket::Hour.of(entries[4].at) {
        for row in audit.audit_chain_hour(&chain, hour).await.unwrap() {
            assert_eq!(row.entry.as_ref().map(|e| e.seq), Ok(row.seq));
            walked.push(row.entry.unwrap());
        }
    }
    assert_eq!(walked, entries);
    let report = verify_chain(audit.as_ref(), &chain).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, 5);

    // Search: each index, newest first, time-bounded, paged.
    let (from, to) = (base - ChronoDuration::minutes(1), base + ChronoDuration::hours(3));
    let seqs = |v: &[AuditEntry]| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let page = search(audit.as_ref(), &AuditQuery::new(AuditIndex::staff(doctor), from, to, 10)).await.unwrap();
    assert_eq!(seqs(&page.entries), vec![4, 3, 1], "the doctor's actions, newest first");
    assert_eq!(page.next, None);
    let page =
        search(audit.as_ref(), &AuditQuery::new(AuditIndex::Account(patient_account), from, to, 10)).await.unwrap();
    assert_eq!(seqs(&page.entries), vec![4, 2, 1], "the patient's access history");
    let page = search(audit.as_ref(), &AuditQuery::new(AuditIndex::Action("staff.create".into()), from, to, 10))
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), vec![3]);
    let mut q = AuditQuery::new(AuditIndex::Time, from, to, 2);
    let mut all = Vec::new();
    loop {
        let page = search(audit.as_ref(), &q).await.unwrap();
        assert!(page.entries.len() <= 2);
        all.extend(page.entries.into_iter().filter(|e| e.chain == chain));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    assert_eq!(seqs(&all), vec![5, 4, 3, 2, 1], "pages by time join up without gaps or repeats");
    let window = AuditQuery::new(
        AuditIndex::staff(nurse),
        base + ChronoDuration::minutes(10),
        base + ChronoDuration::minutes(30),
        10,
    );
    assert_eq!(seqs(&search(audit.as_ref(), &window).await.unwrap().entries), vec![2], "the time range bounds it");
    let mut reads = AuditQuery::new(AuditIndex::staff(nurse), from, to, 10);
    reads.filter.action = Some("report.read".into());
    assert_eq!(seqs(&search(audit.as_ref(), &reads).await.unwrap().entries), vec![5], "narrowed by action");
    let cursor = AuditCursor::of(&entries[3]);
    assert_eq!(AuditCursor::decode(&cursor.encode()), Some(cursor));

    // Export: every matching entry, as JSON Lines that parse back to the stored entries, or CSV.
    let q = AuditQuery::new(AuditIndex::Account(patient_account), from, to, 2);
    let mut jsonl = Vec::new();
    assert_eq!(export(audit.as_ref(), &q, ExportFormat::JsonLines, &mut jsonl).await.unwrap(), 3);
    let back: Vec<AuditEntry> =
        String::from_utf8(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, vec![entries[3].clone(), entries[1].clone(), entries[0].clone()]);
    let mut csv = Vec::new();
    export(audit.as_ref(), &q, ExportFormat::Csv, &mut csv).await.unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 4, "a header and three rows");
    assert!(csv.lines().nth(1).unwrap().contains(&format!(",record.read,record,r-1,{patient_account},")));

    // The writer: concurrent callers become one unbroken chain, each answered with its entry.
    let live = unique("node");
    let log = AuditLog::start(audit.clone(), &live).await.unwrap();
    let clerk = StaffId::new();
    let calls = (0..40).map(|_| {
        let log = log.clone();
        let e = ev(clerk, "record.read", None);
        tokio::spawn(async move { log.record(e).await.unwrap() })
    });
    let mut written: Vec<u64> = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        written.push(c.await.unwrap().seq);
    }
    written.sort();
    assert_eq!(written, (1..=40).collect::<Vec<_>>());
    let report = verify_chain(audit.as_ref(), &live).await.unwrap();
    assert!(report.is_intact() && report.verified == 40, "{report:?}");
    let now = Utc::now();
    let mine =
        search(audit.as_ref(), &AuditQuery::new(AuditIndex::staff(clerk), now - ChronoDuration::hours(1), now, 100))
            .await
            .unwrap();
    assert_eq!(mine.entries.len(), 40);

    // A second writer on the same chain cannot fork it: its stale append is refused, then it
    // picks up the stored head and continues the one chain.
    let second = AuditLog::start(audit.clone(), &live).await.unwrap();
    log.record(ev(clerk, "record.read", None)).await.unwrap();
    // Another action: an entry equal to the stored one in every byte (same event within the
    // same millisecond) would be accepted as a retry of it, which is not what this checks.
    assert!(second.record(ev(clerk, "record.print", None)).await.is_err(), "seq 41 is taken");
    assert_eq!(second.record(ev(clerk, "record.read", None)).await.unwrap().seq, 42);
    assert!(verify_chain(audit.as_ref(), &live).await.unwrap().is_intact());
}
