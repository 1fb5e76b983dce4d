//! The fences of the owned actors (several nodes, ARCHITECTURE.md), written through `a` and `b`,
//! two nodes' handles on one store (the embedded store passes itself twice). For each kind: owner
//! A claims and writes; B claims with a newer token and writes; A, waking up with its old token,
//! writes again and is refused whole (`Conflict::StaleFence`), nothing of its write landing and
//! B's standing; a stale claim is refused too; and a write begun past its lease's deadline
//! (`Fence::until_us`) is refused before anything is written.

use chrono::Utc;
use hospital_domain::chat::conversation::{Closer, Conversation, MessageBody, Sender};
use hospital_domain::chat::ticket::Ticket;
use hospital_domain::chat::AgentRef;
use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
use hospital_domain::ledger::Channel;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::notify::{KindChannels, NotificationPreferences};
use hospital_domain::order::{Order, OrderKind};
use hospital_domain::queue::{ClinicQueue, QueueEntry};
use hospital_domain::visit::{VisitId, VisitStatus};
use hospital_domain::*;

use super::samples::{phone, sample_account, sample_patient, unique};
use crate::chat::{ChatWrite, ConversationRow};
use crate::exams::ExamRow;
use crate::payments::PaymentWrite;
use crate::records::{AppointmentNotesRow, VisitRow};
use crate::traits::DataStore;
use crate::{Account, Conflict, Fence, FieldCipher, PatientCaps, PendingEvent, StoreError};

fn stale<T: std::fmt::Debug>(r: crate::Result<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(Conflict::StaleFence)))
}

/// `fence` with a deadline `by_us` microseconds from now (negative: passed).
fn due(fence: Fence, by_us: i64) -> Fence {
    Fence { until_us: Some(crate::lease::now_us() + by_us), ..fence }
}

/// Several nodes: an order's payment fence (`Fence::payment`, the payment actor's lease token),
/// written through `a` and `b`, two nodes' handles on one store. Owner A claims the order and
/// writes; B claims it with a newer token and closes it; A, waking up with its old token, pays
/// it (the order and its ledger movement): refused whole, nothing of it lands, B's order stands
/// and no money moved. A stale claim is refused too, and a write begun past its lease's deadline
/// (`Fence::until_us`) is refused before anything is written.
pub async fn payment_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let account = AccountId::new();
    let now = Utc::now();
    let order = Order::new(OrderId::new(), OrderKind::TopUp, account, "充值".into(), Fen::new(5000), now, now);
    // Created unfenced, as a checkout or a hold creates an order before its actor runs.
    a.apply_payment(PaymentWrite::order(order.clone())).await.unwrap();
    let fence = |token| Some(Fence::payment(order.id, token));

    // A claims (a fence alone is a write: the order is as it was) and opens a trade.
    a.apply_payment(PaymentWrite { fence: fence(1), ..Default::default() }).await.unwrap();
    assert_eq!(b.order(order.id).await.unwrap().as_ref(), Some(&order), "a claim changes no order");
    let mut paying = order.clone();
    paying.choose_channel(Channel::Alipay).unwrap();
    paying.open_trade(Channel::Alipay, Fen::new(5000));
    a.apply_payment(PaymentWrite { orders: vec![paying.clone()], fence: fence(1), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(b.order(order.id).await.unwrap().as_ref(), Some(&paying));

    // B takes over and closes the order under its newer token.
    b.apply_payment(PaymentWrite { fence: fence(2), ..Default::default() }).await.unwrap();
    let mut closed = paying.clone();
    closed.close().unwrap();
    closed.next_check_at = None;
    b.apply_payment(PaymentWrite { orders: vec![closed.clone()], fence: fence(2), ..Default::default() })
        .await
        .unwrap();

    // A wakes up and records the payment it believes it saw: refused, with its money movement.
    let mut paid = paying.clone();
    paid.record_cash(Channel::Alipay, &unique("T"), Fen::new(5000), now).unwrap();
    let movement = paid.payment_movement(now, now.date_naive()).unwrap();
    let w = PaymentWrite {
        orders: vec![paid.clone()],
        movements: vec![movement.clone()],
        fence: fence(1),
        ..Default::default()
    };
    assert!(stale(a.apply_payment(w).await), "a stale owner's payment was written");
    for node in [a, b] {
        assert_eq!(node.order(order.id).await.unwrap().as_ref(), Some(&closed), "B's order stands");
        assert!(node.movement(&movement.key).await.unwrap().is_none(), "the stale write moved money");
        assert_eq!(node.balance(account).await.unwrap(), 0);
    }
    assert!(stale(a.apply_payment(PaymentWrite { fence: fence(1), ..Default::default() }).await), "a stale claim");

    // C claims past B; B is refused from then on.
    a.apply_payment(PaymentWrite { fence: fence(3), ..Default::default() }).await.unwrap();
    let w = PaymentWrite { orders: vec![paying.clone()], fence: fence(2), ..Default::default() };
    assert!(stale(b.apply_payment(w).await));

    // A write under C's token begun past its lease's deadline is refused, nothing written; the
    // same write within it lands.
    let mut reopened = closed.clone();
    reopened.description = "充值 (C)".into();
    let late = due(Fence::payment(order.id, 3), -1_000_000);
    let w = PaymentWrite { orders: vec![reopened.clone()], fence: Some(late), ..Default::default() };
    assert!(stale(a.apply_payment(w).await), "a write past its deadline");
    assert_eq!(b.order(order.id).await.unwrap().as_ref(), Some(&closed));
    let in_time = due(Fence::payment(order.id, 3), 60_000_000);
    let w = PaymentWrite { orders: vec![reopened.clone()], fence: Some(in_time), ..Default::default() };
    a.apply_payment(w).await.unwrap();
    assert_eq!(b.order(order.id).await.unwrap().as_ref(), Some(&reopened));
}

/// A session's queue (`Fence::queue`): the fence in the queue's row.
pub async fn queue_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let (session, doctor) = (SessionId::new(), DoctorId::new());
    let fence = |token| Fence::queue(session, token);
    let entry = |name: &str, place| QueueEntry {
        appointment_id: AppointmentId::new(),
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        patient_name: name.into(),
        segment: 0,
        place,
        checked_in_at: Utc::now(),
    };
    let event = |q: &QueueEntry| {
        let m = Message::new(q.account_id, MessageKind::VisitReminder, "就诊提醒", unique("queue"), None, Utc::now());
        PendingEvent::message(&m)
    };

    // A claims before anyone checked in: the claim is no queue.
    a.claim_fence(&fence(1)).await.unwrap();
    assert_eq!(b.queue(session).await.unwrap(), None, "a claim is no queue");
    let mut first = ClinicQueue::new(session, doctor);
    first.check_in(entry("患者甲", 1));
    a.put_queue(session, doctor, &first, &[], Some(&fence(1))).await.unwrap();
    assert_eq!(b.queue(session).await.unwrap().as_ref(), Some(&first));

    // B takes over and checks a second patient in.
    b.claim_fence(&fence(2)).await.unwrap();
    let mut second = first.clone();
    second.check_in(entry("患者乙", 2));
    b.put_queue(session, doctor, &second, &[], Some(&fence(2))).await.unwrap();

    // A wakes up and checks its own second patient in: refused, its event with it.
    let mut stale_queue = first.clone();
    let late = entry("患者丙", 3);
    stale_queue.check_in(late.clone());
    let stale_event = event(&late);
    let r = a.put_queue(session, doctor, &stale_queue, std::slice::from_ref(&stale_event), Some(&fence(1))).await;
    assert!(stale(r), "a stale owner's queue was written");
    for node in [a, b] {
        assert_eq!(node.queue(session).await.unwrap().as_ref(), Some(&second), "B's queue stands");
    }
    assert!(!a.outbox_pending(100_000).await.unwrap().contains(&stale_event), "nor its event");
    assert!(stale(a.claim_fence(&fence(1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let r = b.put_queue(session, doctor, &stale_queue, &[], Some(&due(fence(2), -1_000_000))).await;
    assert!(stale(r), "a write past its deadline");
    assert_eq!(a.queue(session).await.unwrap().as_ref(), Some(&second));
    b.put_queue(session, doctor, &stale_queue, &[], Some(&due(fence(2), 60_000_000))).await.unwrap();
    assert_eq!(a.queue(session).await.unwrap().as_ref(), Some(&stale_queue));
}

/// A conversation (`Fence::conversation`): the fence in the conversation's row, its messages
/// written at the write's timestamp.
pub async fn conversation_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let t0 = Utc::now();
    let id = ConversationId::new();
    let fence = |token| Some(Fence::conversation(id, token));
    let row = |c: &Conversation| ConversationRow { conversation: c.clone(), listed: true, left_groups: vec![] };
    let say =
        |c: &mut Conversation, text: &str| c.append(Sender::Patient, MessageBody::text(text).unwrap(), t0).unwrap();

    // A claims before the conversation is opened: the claim is no conversation.
    a.claim_fence(&Fence::conversation(id, 1)).await.unwrap();
    assert_eq!(b.conversation(id).await.unwrap(), None, "a claim is no conversation");
    let mut opened = Conversation::open(id, AccountId::new(), "李雷", super::chat::group("fence"), t0).unwrap();
    let hello = say(&mut opened, "你好");
    let w = ChatWrite {
        conversations: vec![row(&opened)],
        messages: vec![hello.clone()],
        fence: fence(1),
        ..Default::default()
    };
    a.apply_chat(w).await.unwrap();
    assert_eq!(b.conversation(id).await.unwrap().as_ref(), Some(&opened));

    // B takes over and the patient's next message goes through B.
    b.claim_fence(&Fence::conversation(id, 2)).await.unwrap();
    let mut by_b = opened.clone();
    let second = say(&mut by_b, "我想改约");
    let w = ChatWrite {
        conversations: vec![row(&by_b)],
        messages: vec![second.clone()],
        fence: fence(2),
        ..Default::default()
    };
    b.apply_chat(w).await.unwrap();

    // A wakes up and writes its own second message: refused, the message with it.
    let mut by_a = opened.clone();
    let stale_message = say(&mut by_a, "过期的消息");
    let w = ChatWrite {
        conversations: vec![row(&by_a)],
        messages: vec![stale_message],
        fence: fence(1),
        ..Default::default()
    };
    assert!(stale(a.apply_chat(w).await), "a stale owner's message was written");
    for node in [a, b] {
        assert_eq!(node.conversation(id).await.unwrap().as_ref(), Some(&by_b), "B's conversation stands");
        assert_eq!(node.chat_messages(id, 0, 10).await.unwrap(), vec![hello.clone(), second.clone()]);
    }
    assert!(stale(a.claim_fence(&Fence::conversation(id, 1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let mut later = by_b.clone();
    let third = say(&mut later, "谢谢");
    let w = |until| ChatWrite {
        conversations: vec![row(&later)],
        messages: vec![third.clone()],
        fence: Some(due(Fence::conversation(id, 2), until)),
        ..Default::default()
    };
    assert!(stale(b.apply_chat(w(-1_000_000)).await), "a write past its deadline");
    assert_eq!(a.chat_messages(id, 0, 10).await.unwrap().len(), 2);
    b.apply_chat(w(60_000_000)).await.unwrap();
    assert_eq!(a.conversation(id).await.unwrap().as_ref(), Some(&later));
    assert_eq!(a.chat_messages(id, 0, 10).await.unwrap().len(), 3);
}

/// A ticket (`Fence::ticket`): the fence in the ticket's row, an answer's message-centre item
/// written at the write's timestamp.
pub async fn ticket_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let t0 = Utc::now();
    let (id, account) = (TicketId::new(), AccountId::new());
    let fence = |token| Some(Fence::ticket(id, token));
    let agent = |name: &str| AgentRef { id: StaffId::new(), name: name.into() };
    let item = |text: &str| Message::new(account, MessageKind::SystemNotice, "客服回复", text, None, t0);

    // A claims before the ticket is left: the claim is no ticket.
    a.claim_fence(&Fence::ticket(id, 1)).await.unwrap();
    assert_eq!(b.ticket(id).await.unwrap(), None, "a claim is no ticket");
    let left = Ticket::leave(id, account, "韩梅梅", super::chat::group("fence"), "报告怎么看？", vec![], t0).unwrap();
    a.apply_chat(ChatWrite { tickets: vec![left.clone()], fence: fence(1), ..Default::default() }).await.unwrap();
    assert_eq!(b.ticket(id).await.unwrap().as_ref(), Some(&left));

    // B takes over and an agent answers through it.
    b.claim_fence(&Fence::ticket(id, 2)).await.unwrap();
    let mut by_b = left.clone();
    by_b.answer(agent("王芳"), "请在报告页查看解读。", t0).unwrap();
    let answer = item("请在报告页查看解读。");
    let w =
        ChatWrite { tickets: vec![by_b.clone()], inbox: vec![answer.clone()], fence: fence(2), ..Default::default() };
    b.apply_chat(w).await.unwrap();

    // A wakes up and another agent answers through it: refused, its message-centre item with it.
    let mut by_a = left.clone();
    by_a.answer(agent("李娜"), "过期的回复", t0).unwrap();
    let w =
        ChatWrite { tickets: vec![by_a], inbox: vec![item("过期的回复")], fence: fence(1), ..Default::default() };
    assert!(stale(a.apply_chat(w).await), "a stale owner's answer was written");
    for node in [a, b] {
        assert_eq!(node.ticket(id).await.unwrap().as_ref(), Some(&by_b), "B's answer stands");
        assert_eq!(node.messages_of(account, 10).await.unwrap(), vec![answer.clone()], "one answer sent");
    }
    assert!(stale(a.claim_fence(&Fence::ticket(id, 1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let mut closed = by_b.clone();
    closed.close(Closer::Patient, t0).unwrap();
    let w = |until| ChatWrite {
        tickets: vec![closed.clone()],
        fence: Some(due(Fence::ticket(id, 2), until)),
        ..Default::default()
    };
    assert!(stale(b.apply_chat(w(-1_000_000)).await), "a write past its deadline");
    assert_eq!(a.ticket(id).await.unwrap().as_ref(), Some(&by_b));
    b.apply_chat(w(60_000_000)).await.unwrap();
    assert_eq!(a.ticket(id).await.unwrap().as_ref(), Some(&closed));
}

/// An exam (`Fence::exam`): the fence in the exam's row, its by-account copy, message-centre
/// items and events written at the write's timestamp.
pub async fn exam_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let t0 = Utc::now();
    let account = AccountId::new();
    let ordered = Exam::new(account, PatientId::new(), "血常规", ExamKind::Lab, t0).unwrap();
    let id = ordered.id;
    let fence = |token| Fence::exam(id, token);
    let row = |e: &Exam| ExamRow::seal(e, None).unwrap();
    let notice = |text: &str| Message::new(account, MessageKind::SystemNotice, "检查", text, None, t0);

    // A claims before the exam is written: the claim is no exam.
    a.claim_fence(&fence(1)).await.unwrap();
    assert_eq!(b.exam(id).await.unwrap(), None, "a claim is no exam");
    a.put_exam(&row(&ordered), &[], &[], Some(&fence(1))).await.unwrap();
    assert_eq!(b.exam(id).await.unwrap(), Some(row(&ordered)));

    // B takes over and the exam starts.
    b.claim_fence(&fence(2)).await.unwrap();
    let mut started = ordered.clone();
    started.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, t0).unwrap();
    b.put_exam(&row(&started), &[], &[], Some(&fence(2))).await.unwrap();

    // A wakes up and writes it finished, with its notice and event: refused whole.
    let finished = ExamRow { status: ExamStatus::Completed, completed_at: Some(t0), ..row(&started) };
    let late = notice(&unique("过期的结果"));
    let late_event = PendingEvent::message(&late);
    let r =
        a.put_exam(&finished, std::slice::from_ref(&late), std::slice::from_ref(&late_event), Some(&fence(1))).await;
    assert!(stale(r), "a stale owner's exam was written");
    for node in [a, b] {
        assert_eq!(node.exam(id).await.unwrap(), Some(row(&started)), "B's exam stands");
        assert_eq!(node.exams_of_account(account).await.unwrap(), vec![row(&started)], "and its copy");
        assert!(node.messages_of(account, 10).await.unwrap().is_empty(), "no notice");
    }
    assert!(!a.outbox_pending(100_000).await.unwrap().contains(&late_event), "nor its event");
    assert!(stale(a.claim_fence(&fence(1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let r = b.put_exam(&finished, &[], &[], Some(&due(fence(2), -1_000_000))).await;
    assert!(stale(r), "a write past its deadline");
    assert_eq!(a.exam(id).await.unwrap(), Some(row(&started)));
    b.put_exam(&finished, &[], &[], Some(&due(fence(2), 60_000_000))).await.unwrap();
    assert_eq!(a.exam(id).await.unwrap().as_ref(), Some(&finished));
    assert_eq!(a.exams_of_account(account).await.unwrap(), vec![finished]);
}

/// A visit (`Fence::visit`): the fence in the visit's row, its by-patient copy written at the
/// write's timestamp; the appointment's notes from before the visit, the visit actor's too, under
/// the same fence.
pub async fn visit_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let appointment = AppointmentId::new();
    let id = VisitId::of_appointment(appointment);
    let (account, patient) = (AccountId::new(), PatientId::new());
    let fence = |token| Fence::visit(id, token);
    let notes = |sealed: &str| AppointmentNotesRow {
        appointment_id: appointment,
        account_id: account,
        patient_id: patient,
        sealed: sealed.into(),
    };
    let visit = |status, sealed: &str| VisitRow {
        id,
        appointment_id: appointment,
        account_id: account,
        patient_id: patient,
        doctor_id: DoctorId::new(),
        department_id: DepartmentId::new(),
        status,
        called_at: Utc::now(),
        sealed: sealed.into(),
    };

    // A claims before the visit: the claim is no visit; the patient's notes go under A's fence.
    a.claim_fence(&fence(1)).await.unwrap();
    assert_eq!(b.visit(id).await.unwrap(), None, "a claim is no visit");
    a.put_appointment_notes(&notes("notes-1"), Some(&fence(1))).await.unwrap();
    let called = visit(VisitStatus::Called, "called");
    a.put_visit(&called, Some(&fence(1))).await.unwrap();
    assert_eq!(b.visit(id).await.unwrap().as_ref(), Some(&called));

    // B takes over and the consultation starts.
    b.claim_fence(&fence(2)).await.unwrap();
    let started = visit(VisitStatus::InConsultation, "started");
    b.put_visit(&started, Some(&fence(2))).await.unwrap();

    // A wakes up and writes its own version, and the notes: both refused.
    assert!(stale(a.put_visit(&visit(VisitStatus::Finished, "stale"), Some(&fence(1))).await), "a stale visit");
    assert!(stale(a.put_appointment_notes(&notes("stale"), Some(&fence(1))).await), "stale notes");
    for node in [a, b] {
        assert_eq!(node.visit(id).await.unwrap().as_ref(), Some(&started), "B's visit stands");
        assert_eq!(node.visits_of_patient(account, patient).await.unwrap(), vec![started.clone()], "and its copy");
        assert_eq!(node.appointment_notes(appointment).await.unwrap(), Some(notes("notes-1")), "A's first notes");
    }
    assert!(stale(a.claim_fence(&fence(1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let finished = visit(VisitStatus::Finished, "finished");
    assert!(stale(b.put_visit(&finished, Some(&due(fence(2), -1_000_000))).await), "a visit past its deadline");
    let r = b.put_appointment_notes(&notes("late"), Some(&due(fence(2), -1_000_000))).await;
    assert!(stale(r), "notes past their deadline");
    assert_eq!(a.visit(id).await.unwrap().as_ref(), Some(&started));
    b.put_visit(&finished, Some(&due(fence(2), 60_000_000))).await.unwrap();
    b.put_appointment_notes(&notes("notes-2"), Some(&due(fence(2), 60_000_000))).await.unwrap();
    assert_eq!(a.visit(id).await.unwrap().as_ref(), Some(&finished));
    assert_eq!(a.appointment_notes(appointment).await.unwrap(), Some(notes("notes-2")));
}

/// An account (`Fence::account`, its actor's lease token): the fence in the account's row,
/// checked before anything else of the actor's writes. A stale owner's change of the row (with
/// its event and a new key to claim), a patient added or removed and the notification
/// preferences are each refused whole: no key claimed, no person held, no row changed.
pub async fn account_fence(a: &dyn DataStore, b: &dyn DataStore) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    // These fixed persons recur on a long-lived cluster: no person cap.
    let caps = PatientCaps { per_account: 5, accounts_per_person: usize::MAX };
    let account = sample_account();
    let id = account.id;
    a.create_account(&account).await.unwrap();
    let fence = |token| Fence::account(id, token);

    // A claims (the row is as it was) and adds a patient.
    a.claim_fence(&fence(1)).await.unwrap();
    assert_eq!(b.account(id).await.unwrap().as_ref(), Some(&account), "a claim leaves the row as it was");
    let first = sample_patient(&cipher, id, "11010519491231002X");
    a.add_patient(&first, caps, Some(&fence(1))).await.unwrap();

    // B takes over and binds another phone.
    b.claim_fence(&fence(2)).await.unwrap();
    let newer = Account { phone: Some(phone()), ..account.clone() };
    b.update_account(&newer, &[], Some(&fence(2))).await.unwrap();

    // A wakes up: each of its writes is refused whole.
    let late = Account {
        phone: Some(phone()),
        email: Some(Email::parse(&format!("{}@example.com", unique("late"))).unwrap()),
        ..account.clone()
    };
    let late_event = PendingEvent::unread(id);
    let r = a.update_account(&late, std::slice::from_ref(&late_event), Some(&fence(1))).await;
    assert!(stale(r), "a stale owner's account row was written");
    let second = sample_patient(&cipher, id, "440524198001010013");
    assert!(stale(a.add_patient(&second, caps, Some(&fence(1))).await), "a stale owner added a patient");
    assert!(stale(a.remove_patient(id, first.id, Some(&fence(1))).await), "a stale owner removed a patient");
    let prefs = NotificationPreferences::default().with_changes(&[KindChannels {
        kind: MessageKind::VisitReminder,
        in_app: true,
        sms: false,
        wechat: false,
    }]);
    let r = a.put_notification_preferences(id, &prefs, Some(&fence(1))).await;
    assert!(stale(r), "a stale owner's preferences were written");
    for node in [a, b] {
        assert_eq!(node.account(id).await.unwrap().as_ref(), Some(&newer), "B's row stands");
        assert_eq!(node.account_by_phone(late.phone.as_ref().unwrap()).await.unwrap(), None, "A's phone unclaimed");
        assert_eq!(node.account_by_email(late.email.as_ref().unwrap()).await.unwrap(), None, "A's e-mail too");
        let patients: Vec<PatientId> = node.patients_of(id).await.unwrap().iter().map(|p| p.id).collect();
        assert_eq!(patients, vec![first.id], "the patients as they were");
        let holders = node.holders_of_person(&second.id_card_index).await.unwrap();
        assert!(holders.iter().all(|h| h.account_id != id), "the refused patient's person is not held");
        assert_eq!(node.notification_preferences(id).await.unwrap(), NotificationPreferences::default());
    }
    assert!(!a.outbox_pending(100_000).await.unwrap().contains(&late_event), "nor its event");
    assert!(stale(a.claim_fence(&fence(1)).await), "a stale claim");

    // Past its deadline, refused with nothing written; within it, written.
    let r = b.put_notification_preferences(id, &prefs, Some(&due(fence(2), -1_000_000))).await;
    assert!(stale(r), "a write past its deadline");
    assert_eq!(a.notification_preferences(id).await.unwrap(), NotificationPreferences::default());
    let within = due(fence(2), 60_000_000);
    b.put_notification_preferences(id, &prefs, Some(&within)).await.unwrap();
    assert_eq!(a.notification_preferences(id).await.unwrap(), prefs);
    b.add_patient(&second, caps, Some(&within)).await.unwrap();
    assert!(b.remove_patient(id, first.id, Some(&within)).await.unwrap());
    let patients: Vec<PatientId> = a.patients_of(id).await.unwrap().iter().map(|p| p.id).collect();
    assert_eq!(patients, vec![second.id]);
}
