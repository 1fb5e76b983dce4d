//! Data directories written before index entries carried keys only: there, an appointment's
//! entries by doctor, account and person and an order's entry by account each held a full JSON
//! copy of the row. Rows written in that form (through the engine, as the old code wrote them),
//! in a directory reopened by the new code, read back through the store API beside rows written
//! in the new form; an old row written again has its copies replaced by keys; erasing the account
//! removes both forms. No migration step.

use chrono::{NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::booking::SessionBook;
use hospital_domain::order::Order;
use hospital_domain::{AccountId, DepartmentId, DoctorId};
use hospital_store::conformance::{sample_hold, sample_session};
use hospital_store::embedded::engine::Reader;
use hospital_store::embedded::keys::Key;
use hospital_store::embedded::tables::*;
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, PaymentStore, RecordStore, ScheduleStore};

/// The four copies of the appointment and the two of its order, as the code before this change
/// wrote them (`WriteCtx::put`: the JSON of the whole row under every key).
async fn write_old_form(store: &EmbeddedStore, a: &Appointment, o: &Order) {
    let (a, o) = (a.clone(), o.clone());
    store
        .engine()
        .write(move |ctx| {
            ctx.put(APPOINTMENTS, &Key::new().uuid(&a.id.0), &a);
            ctx.put(APPOINTMENTS_BY_DOCTOR, &Key::new().uuid(&a.doctor_id.0).date(a.date).uuid(&a.id.0), &a);
            ctx.put(APPOINTMENTS_BY_ACCOUNT, &Key::new().uuid(&a.account_id.0).uuid(&a.id.0), &a);
            ctx.put(APPOINTMENTS_BY_PERSON, &Key::new().str(&a.person).date(a.date).uuid(&a.id.0), &a);
            ctx.put(ORDERS, &Key::new().uuid(&o.id.0), &o);
            ctx.put(ORDERS_BY_ACCOUNT, &Key::new().uuid(&o.account_id.0).uuid(&o.id.0), &o);
            Ok(())
        })
        .await
        .unwrap();
}

/// The payloads of an index partition as stored: empty for a key-only entry.
fn stored(store: &EmbeddedStore, table: Def, prefix: &Key) -> Vec<Vec<u8>> {
    store.engine().read(|r| r.scan_raw(table, prefix.bytes())).unwrap().into_iter().map(|(_, v)| v).collect()
}

fn ids(v: &[Appointment]) -> Vec<hospital_domain::AppointmentId> {
    let mut ids: Vec<_> = v.iter().map(|a| a.id).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_with_full_index_copies_read_back_beside_key_only_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (doctor, account, person) = (DoctorId::new(), AccountId::new(), "person-old-rows");
    let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    // One person holds once per session: three sessions of the doctor that day.
    let sessions: Vec<_> = (0..3).map(|_| sample_session(doctor, DepartmentId::new(), date, 4)).collect();
    let mut books: Vec<_> = sessions.iter().map(|s| SessionBook::new(s.clone(), [], vec![])).collect();
    let (old_a, old_o) = sample_hold(&mut books[0], 0, account, person);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put_sessions(&sessions).await.unwrap();
        write_old_form(&store, &old_a, &old_o).await;
    }

    // The new code opens the old directory and writes a second hold of the same account, person
    // and doctor in the new form.
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (new_a, new_o) = sample_hold(&mut books[1], 1, account, person);
    store
        .apply_booking(BookingWrite {
            appointments: vec![new_a.clone()],
            orders: vec![new_o.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let by_account = Key::new().uuid(&account.0);
    let forms = stored(&store, APPOINTMENTS_BY_ACCOUNT, &by_account);
    assert_eq!(forms.len(), 2);
    assert_eq!(forms.iter().filter(|v| v.is_empty()).count(), 1, "one old full copy, one key-only entry: {forms:?}");
    assert_eq!(stored(&store, ORDERS_BY_ACCOUNT, &by_account).iter().filter(|v| v.is_empty()).count(), 1);

    // Both read back, whole and equal to what was written, through every index.
    let want = ids(&[old_a.clone(), new_a.clone()]);
    let of_account = store.appointments_of_account(account).await.unwrap();
    assert_eq!(ids(&of_account), want);
    for a in [&old_a, &new_a] {
        assert_eq!(of_account.iter().find(|x| x.id == a.id), Some(a));
        assert_eq!(store.appointment(a.id).await.unwrap().as_ref(), Some(a));
    }
    let of_doctor = store.appointments_of_doctor(doctor, date, date).await.unwrap();
    assert_eq!(ids(&of_doctor), want);
    assert!(of_doctor.iter().all(|a| a == &old_a || a == &new_a));
    let of_person = store.appointments_of_person(person, date, date).await.unwrap();
    assert_eq!(ids(&of_person), want);
    assert!(of_person.iter().all(|a| a == &old_a || a == &new_a));
    assert!(store
        .appointments_of_person(person, date.succ_opt().unwrap(), date.succ_opt().unwrap())
        .await
        .unwrap()
        .is_empty());
    let mut orders = store.orders_of_account(account).await.unwrap();
    orders.sort_by_key(|o| o.id);
    let mut want_orders = vec![old_o.clone(), new_o.clone()];
    want_orders.sort_by_key(|o| o.id);
    assert_eq!(orders, want_orders);

    // The old row written again (paid): every index reads the new version, and its copies are
    // gone (keys only now).
    let paid = books[0].confirm(old_a.id, Utc::now()).unwrap();
    assert_eq!(paid.status, AppointmentStatus::Confirmed);
    store.apply_booking(BookingWrite { appointments: vec![paid.clone()], ..Default::default() }).await.unwrap();
    for found in [
        store.appointments_of_account(account).await.unwrap(),
        store.appointments_of_doctor(doctor, date, date).await.unwrap(),
        store.appointments_of_person(person, date, date).await.unwrap(),
    ] {
        assert_eq!(found.iter().find(|a| a.id == old_a.id), Some(&paid), "the stale copy is not read");
        assert_eq!(found.len(), 2);
    }
    assert!(stored(&store, APPOINTMENTS_BY_ACCOUNT, &by_account).iter().all(|v| v.is_empty()));
    assert!(stored(&store, APPOINTMENTS_BY_DOCTOR, &Key::new().uuid(&doctor.0)).iter().all(|v| v.is_empty()));
    assert!(stored(&store, APPOINTMENTS_BY_PERSON, &Key::new().str(person)).iter().all(|v| v.is_empty()));

    // Erasing the account finds the rows of both forms through its index and removes them all.
    let (third_a, third_o) = sample_hold(&mut books[2], 0, account, person);
    write_old_form(&store, &third_a, &third_o).await;
    let erased = store.erase_account(account).await.unwrap();
    assert_eq!(erased.appointments, 3);
    assert!(store.appointments_of_account(account).await.unwrap().is_empty());
    assert!(store.appointments_of_doctor(doctor, date, date).await.unwrap().is_empty());
    assert!(store.appointments_of_person(person, date, date).await.unwrap().is_empty());
    for a in [&old_a, &new_a, &third_a] {
        assert_eq!(store.appointment(a.id).await.unwrap(), None);
    }
    assert!(stored(&store, APPOINTMENTS_BY_PERSON, &Key::new().str(person)).is_empty());
}
