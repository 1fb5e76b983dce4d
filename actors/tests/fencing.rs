//! Issue 13, the fencing test at the actor level: two actor systems (two nodes) over one store
//! and one Redis, each running a doctor's schedule only under the doctor's lease. Node A runs the
//! doctor; its lease lapses while A still runs the actor (as when A stalls or loses Redis for
//! longer than the lease: here the lease key is removed); node B takes over with a newer token
//! and books; A, still holding the doctor's places in memory with its old token, books again and
//! is refused by the store: nothing A writes after the hand-over lands, B's bookings stand, and
//! A cannot start the doctor again while B owns it. Run on the embedded store and on the ScyllaDB
//! backend (against kassandra), whose fence is a conditional batch in the doctor's partition.
//! The same for an order's payment actor (`payment:<order>`): a stale owner cannot pay the order
//! again from the balance once another node took it over and paid it; for a session's queue
//! (`queue:<session>`) and a conversation (`chat:<conversation>`) likewise, and a ticket
//! (`ticket:<id>`), an exam (`exam:<id>`), a visit (`visit:<id>`) and an account's own actor
//! (`account:<id>`).

use chrono::{Duration as Days, NaiveTime, Utc};
use hospital_actors::Party;
use hospital_actors::{ActorDeps, ActorSystem, BookingError, ProfileChange};
use hospital_domain::account::Relation;
use hospital_domain::chat::conversation::MessageBody;
use hospital_domain::chat::service_hours::ServiceHours;
use hospital_domain::chat::ticket::Ticket;
use hospital_domain::chat::{AgentRef, GroupCode, ServiceGroup};
use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
use hospital_domain::ledger::Channel;
use hospital_domain::message::MessageKind;
use hospital_domain::notify::KindChannels;
use hospital_domain::order::{Order, OrderKind, OrderStatus};
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::visit::{ConsultationInput, ImportedVisit, Visit, VisitId};
use hospital_domain::{
    AccountId, AppointmentId, ConversationId, DepartmentId, DoctorId, Fen, OrderId, PatientId, SessionId, StaffId,
    TicketId,
};
use hospital_store::scylla::ScyllaStore;
use hospital_store::{
    DataStore, EmbeddedStore, ExamRow, FieldCipher, KeyVault, PatientCaps, PaymentWrite, PersonCipher, RedisKv,
    RedisLeases, Stores,
};
use hospital_testkit::kassandra::KassandraServer;
use hospital_testkit::RedisServer;
use std::sync::Arc;

mod common;

const PREFIX: &str = "fencing";

/// Two nodes (actor systems) over one store and one Redis, and a probe on the leases they take.
struct TwoNodes {
    a: ActorSystem,
    b: ActorSystem,
    leases: RedisLeases,
    kv: RedisKv,
    _redis: RedisServer,
}

impl TwoNodes {
    /// Both nodes seal patients' medical data with keys from `vault` under one master key.
    async fn start(stores: &Stores, vault: &Arc<dyn KeyVault>) -> Self {
        let redis = RedisServer::start();
        let node = |name| {
            let deps = ActorDeps::new(stores.clone(), Default::default())
                .with_person_cipher(PersonCipher::new(vault.clone(), master()));
            common::node_from(deps, &redis, PREFIX, name)
        };
        let (a, b) = (node("node-a").await, node("node-b").await);
        let kv = RedisKv::connect(&redis.url(), "probe").await.unwrap();
        let leases = RedisLeases::new(kv.connection(), PREFIX);
        TwoNodes { a, b, leases, kv, _redis: redis }
    }

    /// Who holds `resource`'s lease, with its token.
    async fn holder(&self, resource: &str) -> Option<(String, u64)> {
        self.leases.holder(resource).await.unwrap()
    }

    /// `resource`'s lease lapses while its holder still runs the actor (as when it stalls, or
    /// loses Redis, past the lease): its key is removed.
    async fn lapse(&self, resource: &str) {
        let key = format!("{PREFIX}:lease:{resource}");
        let removed: i64 = redis::cmd("DEL").arg(key).query_async(&mut self.kv.connection()).await.unwrap();
        assert_eq!(removed, 1, "the lease of {resource} is where RedisLeases keeps it");
    }

    async fn shutdown(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

/// An embedded store in a directory of its own (kept while the test runs), and its key vault.
fn embedded() -> (tempfile::TempDir, Stores, Arc<dyn KeyVault>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    (dir, Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) }, Arc::new(store))
}

/// The ScyllaDB backend over a kassandra server of its own (kept while the test runs), and its
/// key vault.
async fn on_scylla(keyspace: &str) -> (KassandraServer, Stores, Arc<dyn KeyVault>) {
    let server = KassandraServer::start();
    let store = ScyllaStore::connect_with(&server.uri(), keyspace, true).await.unwrap().with_replication_factor(1);
    store.create_schema().await.unwrap();
    (server, Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) }, Arc::new(store))
}

/// A scenario as two tests: `$embedded` on the embedded store, `$scylla` on the ScyllaDB
/// backend against kassandra, in `$keyspace`.
macro_rules! on_both_stores {
    ($embedded:ident, $scylla:ident, $keyspace:literal, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $embedded() {
            let (_dir, stores, vault) = embedded();
            $scenario(stores, vault).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scylla() {
            let (_server, stores, vault) = on_scylla($keyspace).await;
            $scenario(stores, vault).await;
        }
    };
}

async fn patient(system: &ActorSystem, n: usize) -> (AccountId, PatientId) {
    common::patient(system, &format!("fencing-index-{n}"), Relation::Myself).await
}

on_both_stores!(
    a_schedule_actor_with_an_old_token_cannot_write_after_another_node_took_the_doctor,
    on_scylla_a_schedule_actor_with_an_old_token_cannot_write_after_another_node_took_the_doctor,
    "fencing",
    old_token_refused
);

on_both_stores!(
    a_payment_actor_with_an_old_token_cannot_write_after_another_node_took_the_order,
    on_scylla_a_payment_actor_with_an_old_token_cannot_write_after_another_node_took_the_order,
    "pay_fencing",
    old_payment_token_refused
);

/// Two nodes and one order paid from the balance: A runs the order's actor, its lease lapses,
/// B takes the order over and pays it; A, still holding the unpaid order in memory, pays again
/// and is refused by the store. The balance is debited once, B's payment stands, and A cannot
/// run the order again while B owns it.
async fn old_payment_token_refused(stores: Stores, vault: Arc<dyn KeyVault>) {
    let nodes = TwoNodes::start(&stores, &vault).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let store: &Arc<dyn DataStore> = &stores.data;

    // An account with 200.00 on its balance (a top-up by Alipay) and a 60.00 fee order.
    let account = AccountId::new();
    let now = Utc::now();
    let mut topup = Order::new(OrderId::new(), OrderKind::TopUp, account, "充值".into(), Fen::new(20000), now, now);
    topup.choose_channel(Channel::Alipay).unwrap();
    topup.open_trade(Channel::Alipay, Fen::new(20000));
    topup.record_cash(Channel::Alipay, "T-fencing", Fen::new(20000), now).unwrap();
    let credit = topup.payment_movement(now, now.date_naive()).unwrap();
    store
        .apply_payment(PaymentWrite { orders: vec![topup], movements: vec![credit], ..Default::default() })
        .await
        .unwrap();
    let fee =
        Order::new(OrderId::new(), OrderKind::Fees, account, "药费".into(), Fen::new(6000), now, now + Days::hours(1));
    store.apply_payment(PaymentWrite::order(fee.clone())).await.unwrap();

    // Node A runs the order's actor under the order's lease.
    assert_eq!(a.order(fee.id).await.unwrap().status, OrderStatus::Created);
    let resource = hospital_store::payment_resource(fee.id);
    let (holder, token_a) = nodes.holder(&resource).await.expect("A holds the order's lease");
    assert_eq!(holder, "node-a");
    assert!(b.order(fee.id).await.is_err(), "B may not run A's order");

    // A's lease lapses while its actor still runs; B takes the order over and pays it.
    nodes.lapse(&resource).await;
    let paid = b.pay_from_balance(fee.id).await.expect("B pays once the lease is free");
    assert_eq!(paid.status, OrderStatus::Paid);
    let (holder, token_b) = nodes.holder(&resource).await.expect("B holds the lease");
    assert_eq!(holder, "node-b");
    assert!(token_b > token_a, "a new holder gets a larger token ({token_b} > {token_a})");
    assert_eq!(store.balance(account).await.unwrap(), 14000);

    // A still holds the unpaid order in memory, with its old token: its payment is refused.
    let r = a.pay_from_balance(fee.id).await;
    assert!(r.is_err(), "a write under the old token must not land: {r:?}");
    assert_eq!(store.balance(account).await.unwrap(), 14000, "the balance is debited once");
    assert_eq!(store.order(fee.id).await.unwrap().unwrap(), paid, "B's payment stands");

    // A cannot run the order again while B owns it; B goes on serving it.
    assert!(a.order(fee.id).await.is_err(), "A may not run B's order");
    assert_eq!(b.order(fee.id).await.unwrap(), paid);

    nodes.shutdown().await;
}

on_both_stores!(
    queue_and_conversation_actors_with_an_old_token_cannot_write_after_another_node_took_them,
    on_scylla_queue_and_conversation_actors_with_an_old_token_cannot_write_after_another_node_took_them,
    "chat_fencing",
    old_queue_and_chat_tokens_refused
);

/// A session's queue and a conversation, each run by node A until its lease lapses and node B
/// takes it over and writes; A, still running it from memory, writes again and is refused: the
/// stored queue and conversation are B's, and A cannot run either again while B owns it.
async fn old_queue_and_chat_tokens_refused(stores: Stores, vault: Arc<dyn KeyVault>) {
    let nodes = TwoNodes::start(&stores, &vault).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let store: &Arc<dyn DataStore> = &stores.data;

    // The queue: A calls room 3, B (after A's lease lapsed) room 5, A again room 7.
    let session = sample_session(DoctorId::new());
    store.put_sessions(std::slice::from_ref(&session)).await.unwrap();
    a.call_next(session.id, "3".into()).await.expect("node A runs the queue under its lease");
    let resource = hospital_store::queue_resource(session.id);
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-a"));
    assert!(b.queue_state(session.id).await.is_err(), "B may not run A's queue");
    nodes.lapse(&resource).await;
    let by_b = b.call_next(session.id, "5".into()).await.expect("B runs the queue once the lease is free");
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-b"));
    let r = a.call_next(session.id, "7".into()).await;
    assert!(r.is_err(), "a queue write under the old token must not land: {r:?}");
    assert_eq!(store.queue(session.id).await.unwrap(), Some(by_b.clone()), "B's queue stands");
    assert!(a.queue_state(session.id).await.is_err(), "A may not run B's queue");
    assert_eq!(b.queue_state(session.id).await.unwrap(), by_b);

    // The conversation: opened on A; B (after A's lease lapsed) takes the patient's next message;
    // A's own next message is refused and never stored.
    let group = GroupCode::parse(&format!("fence-{}", &SessionId::new().to_string()[..8])).unwrap();
    store
        .put_chat_group(&ServiceGroup {
            code: group.clone(), name: "挂号咨询".into(), hours: ServiceHours::always()
        })
        .await
        .unwrap();
    let (id, account) = (ConversationId::new(), AccountId::new());
    let hello = MessageBody::text("你好").unwrap();
    a.chat_open(id, account, "李雷".into(), group, Some(hello)).await.expect("node A opens the conversation");
    let resource = hospital_store::conversation_resource(id);
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-a"));
    nodes.lapse(&resource).await;
    let patient = Party::Patient(account);
    b.chat_send(id, patient, MessageBody::text("我想改约").unwrap()).await.expect("B takes the conversation over");
    let r = a.chat_send(id, patient, MessageBody::text("过期的消息").unwrap()).await;
    assert!(r.is_err(), "a message under the old token must not land: {r:?}");
    let texts: Vec<String> = store
        .chat_messages(id, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| match &m.body {
            MessageBody::Text { text } => text.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, vec!["你好", "我想改约"], "only A's message before the hand-over and B's");
    assert!(a.chat_conversation(id).await.is_err(), "A may not run B's conversation");

    nodes.shutdown().await;
}

on_both_stores!(
    ticket_exam_and_visit_actors_with_an_old_token_cannot_write_after_another_node_took_them,
    on_scylla_ticket_exam_and_visit_actors_with_an_old_token_cannot_write_after_another_node_took_them,
    "record_fencing",
    old_ticket_exam_and_visit_tokens_refused
);

/// A ticket, an exam and a visit, each written by node A until its lease lapses and node B
/// takes it over and writes; A, still running it from memory, writes again and is refused: the
/// stored ticket, exam and visit are B's, and A cannot run them again while B owns them.
async fn old_ticket_exam_and_visit_tokens_refused(stores: Stores, vault: Arc<dyn KeyVault>) {
    let nodes = TwoNodes::start(&stores, &vault).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let store: &Arc<dyn DataStore> = &stores.data;
    let (account, patient) = (AccountId::new(), PatientId::new());
    let now = Utc::now();

    // The ticket: left on A; an agent answers on B once A's lease lapsed; another agent's answer
    // through A, which still holds it open in memory, is refused and sends the patient nothing.
    let id = TicketId::new();
    let group = GroupCode::parse("fence-tickets").unwrap();
    let left = Ticket::leave(id, account, "韩梅梅", group, "报告怎么看？", vec![], now).unwrap();
    a.ticket_leave(id, left).await.expect("node A takes the ticket");
    let resource = hospital_store::ticket_resource(id);
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-a"));
    nodes.lapse(&resource).await;
    let agent = |name: &str| AgentRef { id: StaffId::new(), name: name.into() };
    let answered = b
        .ticket_answer(id, agent("王芳"), "请在报告页查看解读。".into(), "挂号咨询".into())
        .await
        .expect("B answers once the lease is free");
    let r = a.ticket_answer(id, agent("李娜"), "过期的回复".into(), "挂号咨询".into()).await;
    assert!(r.is_err(), "an answer under the old token must not land: {r:?}");
    assert_eq!(store.ticket(id).await.unwrap(), Some(answered), "B's answer stands");
    assert_eq!(store.messages_of(account, 10).await.unwrap().len(), 1, "one answer sent");
    assert!(a.ticket(id).await.is_err(), "A may not run B's ticket");

    // The exam: ordered on A, started on B; A, still holding it as ordered, starts it again.
    let exam = Exam::new(account, patient, "血常规", ExamKind::Lab, now).unwrap();
    a.create_exam(exam.clone()).await.expect("node A orders the exam");
    let resource = hospital_store::exam_resource(exam.id);
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-a"));
    nodes.lapse(&resource).await;
    let start = ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None };
    let started = b.change_exam(exam.id, start.clone()).await.expect("B starts the exam");
    let r = a.change_exam(exam.id, start).await;
    assert!(r.is_err(), "an exam write under the old token must not land: {r:?}");
    assert_eq!(store.exam(exam.id).await.unwrap(), Some(ExamRow::seal(&started, None).unwrap()), "B's exam stands");
    let r = a.change_exam(exam.id, ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }).await;
    assert!(r.is_err(), "A may not run B's exam: {r:?}");

    // The visit: made on A; the patient's note taken on B; A's own note refused.
    let appointment = AppointmentId::new();
    let header = ImportedVisit {
        id: VisitId::of_appointment(appointment),
        appointment_id: appointment,
        account_id: account,
        patient_id: patient,
        patient_name: "韩梅梅".into(),
        doctor_id: DoctorId::new(),
        department_id: DepartmentId::new(),
        room: "3诊室".into(),
        started_at: now,
        finished_at: None,
    };
    let input = ConsultationInput { chief_complaint: Some("头痛两天".into()), ..Default::default() };
    let visit = a.import_visit(Visit::imported(header, &input).unwrap()).await.expect("node A makes the visit");
    let resource = hospital_store::visit_resource(visit.id);
    assert_eq!(nodes.holder(&resource).await.map(|(h, _)| h).as_deref(), Some("node-a"));
    nodes.lapse(&resource).await;
    let by_b = b.add_visit_note(visit.id, "我对青霉素过敏".into()).await.expect("B takes the note");
    let r = a.add_visit_note(visit.id, "过期的备注".into()).await;
    assert!(r.is_err(), "a visit write under the old token must not land: {r:?}");
    let cipher = PersonCipher::new(vault.clone(), master());
    let key = cipher.existing_key(patient).await.unwrap().expect("the patient's key");
    let stored = store.visit(visit.id).await.unwrap().expect("the visit").open(&key).unwrap();
    assert_eq!(stored, by_b, "B's visit stands, with its note alone");
    assert!(a.visit(visit.id).await.is_err(), "A may not run B's visit");

    nodes.shutdown().await;
}

on_both_stores!(
    an_account_actor_with_an_old_token_cannot_write_after_another_node_took_the_account,
    on_scylla_an_account_actor_with_an_old_token_cannot_write_after_another_node_took_the_account,
    "account_fencing",
    old_account_token_refused
);

/// An account's actor (`account:<id>`: its row, its patients, its preferences): A runs it and
/// adds a patient; its lease lapses; B takes the account over, renames it and saves its
/// preferences; A, still holding the account's patients in memory, removes the patient and is
/// refused: the patient stays, B's row and preferences stand, and A cannot run the account again
/// while B owns it.
async fn old_account_token_refused(stores: Stores, vault: Arc<dyn KeyVault>) {
    let nodes = TwoNodes::start(&stores, &vault).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let store: &Arc<dyn DataStore> = &stores.data;
    let account = hospital_store::conformance::sample_account();
    let id = account.id;
    store.create_account(&account).await.unwrap();

    let record = common::patient_record(id, "account-fencing", Relation::Myself);
    let added = a.add_patient(record, PatientCaps { per_account: 5, accounts_per_person: 5 }).await;
    let added = added.expect("node A adds the patient");
    let resource = hospital_store::account_resource(id);
    let (holder, token_a) = nodes.holder(&resource).await.expect("A holds the account's lease");
    assert_eq!(holder, "node-a");
    nodes.lapse(&resource).await;

    let rename = |name: &str| ProfileChange { name: Some(name.into()), gender: None, birth_date: None };
    let renamed = b.update_profile(id, rename("李雷")).await.expect("B renames once the lease is free");
    let (holder, token_b) = nodes.holder(&resource).await.expect("B holds the account's lease");
    assert_eq!(holder, "node-b");
    assert!(token_b > token_a, "a new holder gets a larger token ({token_b} > {token_a})");
    let kinds = vec![KindChannels { kind: MessageKind::VisitReminder, in_app: true, sms: false, wechat: false }];
    let prefs = b.set_notification_preferences(id, kinds).await.expect("B saves the preferences");

    let r = a.remove_patient(id, added.id).await;
    assert!(r.is_err(), "a removal under the old token must not land: {r:?}");
    let patients: Vec<PatientId> = store.patients_of(id).await.unwrap().iter().map(|p| p.id).collect();
    assert_eq!(patients, vec![added.id], "the patient stays");
    assert_eq!(store.account(id).await.unwrap(), Some(renamed), "B's row stands");
    assert_eq!(store.notification_preferences(id).await.unwrap(), prefs, "and B's preferences");
    let r = a.update_profile(id, rename("过期")).await;
    assert!(r.is_err(), "A may not run B's account: {r:?}");
    assert_eq!(b.list_patients(id).await.unwrap().len(), 1, "B goes on serving");

    nodes.shutdown().await;
}

/// The master key both nodes wrap patients' data keys with.
fn master() -> FieldCipher {
    FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap()
}

/// A session of `doctor` tomorrow, open and released.
fn sample_session(doctor: DoctorId) -> ClinicSession {
    let date = HospitalZone::default().local_date(Utc::now()) + Days::days(1);
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: DepartmentId::new(),
        date,
        period: Period::Morning,
        segments: vec![Segment {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            quota: 10,
        }],
        fee: Fen::new(1500),
        release_at: Utc::now() - Days::hours(1),
        status: SessionStatus::Open,
    }
}

async fn old_token_refused(stores: Stores, vault: Arc<dyn KeyVault>) {
    let nodes = TwoNodes::start(&stores, &vault).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let store: &Arc<dyn DataStore> = &stores.data;

    let doctor = DoctorId::new();
    let session = sample_session(doctor);
    let date = session.date;
    store.put_sessions(std::slice::from_ref(&session)).await.unwrap();
    let slot = SlotId { session_id: session.id, segment: 0 };
    let booked = || async { store.appointments_of_doctor(doctor, date, date).await.unwrap() };

    // Node A runs the doctor and books.
    let (a1, p1) = patient(a, 1).await;
    let first = a.book(a1, slot, p1, None).await.expect("node A books under its lease").0;
    let resource = hospital_store::schedule_resource(doctor);
    let (holder, token_a) = nodes.holder(&resource).await.expect("A holds the lease");
    assert_eq!(holder, "node-a");

    // While A holds it, node B cannot run the doctor: its booking is refused, nothing written.
    let (b1, q1) = patient(b, 2).await;
    let r = b.book(b1, slot, q1, None).await;
    assert!(matches!(r, Err(BookingError::Unavailable(_))), "B may not run A's doctor: {r:?}");
    assert_eq!(booked().await.len(), 1);

    // A's lease lapses while its actor still runs (A stalled, or lost Redis, past the lease).
    nodes.lapse(&resource).await;

    // Node B takes the doctor over with a newer token and books.
    let second = b.book(b1, slot, q1, None).await.expect("B books once the lease is free").0;
    let (holder, token_b) = nodes.holder(&resource).await.expect("B holds the lease");
    assert_eq!(holder, "node-b");
    assert!(token_b > token_a, "a new holder gets a larger token ({token_b} > {token_a})");

    // A still runs the doctor from memory, with its old token: its write is refused.
    let (a2, p2) = patient(a, 3).await;
    let r = a.book(a2, slot, p2, None).await;
    assert!(r.is_err(), "a write under the old token must not land: {r:?}");
    let now: Vec<_> = booked().await.into_iter().map(|x| x.id).collect();
    assert_eq!(now.len(), 2, "only A's booking before the hand-over and B's: {now:?}");
    assert!(now.contains(&first.id) && now.contains(&second.id));

    // A's actor, restarted after the refused write, cannot take the doctor back from B.
    let r = a.book(a2, slot, p2, None).await;
    assert!(matches!(r, Err(BookingError::Unavailable(_))), "A may not run B's doctor: {r:?}");
    assert_eq!(booked().await.len(), 2);
    // B goes on serving.
    let (b2, q2) = patient(b, 4).await;
    b.book(b2, slot, q2, None).await.expect("B keeps booking");
    assert_eq!(booked().await.len(), 3);

    nodes.shutdown().await;
}
